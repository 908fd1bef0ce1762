//! Running the programs we start, always with a deadline and their output at hand.

use std::io::Read;
use std::process::{Command, ExitCode, ExitStatus, Output, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use wait_timeout::ChildExt;

/// Runs `command` with its output captured, killing it once `deadline` has passed.
/// A non-zero exit is an error that carries the last lines the program printed.
pub(crate) fn run(mut command: Command, deadline: Duration) -> Result<Output> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let program = command.get_program().to_string_lossy().into_owned();
    let output = run_unchecked(command, deadline)?;
    if !output.status.success() {
        bail!(
            "`{program}` failed ({}): {}",
            output.status,
            last_lines(&output, 5)
        );
    }
    Ok(output)
}

/// Runs `command` with the stdio it was given, killing it once `deadline` has passed, and
/// collects what it wrote to the streams that are piped. Its exit status is the caller's.
pub(crate) fn run_unchecked(mut command: Command, deadline: Duration) -> Result<Output> {
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start `{program}`"))?;
    // Drain the pipes while waiting so a chatty program cannot block on a full pipe.
    let stdout = child
        .stdout
        .take()
        .map(|mut pipe| std::thread::spawn(move || read_all(&mut pipe)));
    let stderr = child
        .stderr
        .take()
        .map(|mut pipe| std::thread::spawn(move || read_all(&mut pipe)));
    let status = match child
        .wait_timeout(deadline)
        .with_context(|| format!("cannot wait for `{program}`"))?
    {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "`{program}` did not finish within {} s and was stopped",
                deadline.as_secs_f32()
            );
        }
    };
    let collect = |reader: Option<std::thread::JoinHandle<Vec<u8>>>| {
        reader.and_then(|r| r.join().ok()).unwrap_or_default()
    };
    Ok(Output {
        status,
        stdout: collect(stdout),
        stderr: collect(stderr),
    })
}

/// The cargo that runs the xtask (`$CARGO`), else `cargo` from PATH.
pub(crate) fn cargo_program() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// A `cargo` command, run by the cargo that runs the xtask, without the variables cargo set
/// for the xtask.
pub(crate) fn cargo() -> Command {
    without_cargo_run_vars(Command::new(cargo_program()))
}

/// `command` without the variables that `cargo run` sets for the program it runs: build
/// scripts watch some of them (`CARGO_MANIFEST_DIR`, for one), and seeing them change would
/// rebuild half the dependencies on every nested cargo run.
pub(crate) fn without_cargo_run_vars(mut command: Command) -> Command {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let set_by_cargo_run = name.starts_with("CARGO_PKG_")
            || matches!(
                name.as_ref(),
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
            );
        if set_by_cargo_run {
            command.env_remove(name.as_ref());
        }
    }
    command
}

fn read_all(pipe: &mut impl Read) -> Vec<u8> {
    let mut bytes = Vec::new();
    let _ = pipe.read_to_end(&mut bytes);
    bytes
}

/// The last `n` non-empty lines of what a program printed, on one line.
pub(crate) fn last_lines(output: &Output, n: usize) -> String {
    let text = [
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    ]
    .concat();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let tail = lines[lines.len().saturating_sub(n)..].join(" | ");
    if tail.is_empty() {
        "it printed nothing".to_string()
    } else {
        tail
    }
}

/// The exit code a program ended with, to exit with in turn; for one ended by a signal, 128
/// plus its number, as shells give it.
pub(crate) fn exit_code(status: ExitStatus) -> ExitCode {
    #[cfg(unix)]
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        return ExitCode::from(u8::try_from(128 + signal).unwrap_or(1));
    }
    match status.code() {
        Some(0) => ExitCode::SUCCESS,
        code => ExitCode::from(code.and_then(|c| u8::try_from(c).ok()).unwrap_or(1)),
    }
}
