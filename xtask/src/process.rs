//! Running the programs we start, always with a deadline and their output at hand.

use std::io::Read;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use wait_timeout::ChildExt;

/// Runs `command` to completion, killing it once `deadline` has passed.
/// A non-zero exit is an error that carries the last lines the program printed.
pub(crate) fn run(mut command: Command, deadline: Duration) -> Result<Output> {
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start `{program}`"))?;

    // Drain both pipes while waiting so a chatty program cannot block on a full pipe.
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let out_reader = std::thread::spawn(move || read_all(&mut stdout));
    let err_reader = std::thread::spawn(move || read_all(&mut stderr));

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
    let output = Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    };
    if !output.status.success() {
        bail!(
            "`{program}` failed ({}): {}",
            output.status,
            last_lines(&output, 5)
        );
    }
    Ok(output)
}

/// Runs `command` with the terminal as its input and output, killing it after `deadline`.
pub(crate) fn run_attached(mut command: Command, deadline: Duration) -> Result<ExitStatus> {
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start `{program}`"))?;
    match child
        .wait_timeout(deadline)
        .with_context(|| format!("cannot wait for `{program}`"))?
    {
        Some(status) => Ok(status),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "`{program}` did not finish within {} s and was stopped",
                deadline.as_secs()
            )
        }
    }
}

/// Like [`run_attached`], with stdout captured (it must be piped) and stderr on the terminal.
pub(crate) fn run_attached_capturing(mut command: Command, deadline: Duration) -> Result<Output> {
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start `{program}`"))?;
    let mut stdout = child.stdout.take().context("stdout is not piped")?;
    let reader = std::thread::spawn(move || read_all(&mut stdout));
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
                deadline.as_secs()
            )
        }
    };
    Ok(Output {
        status,
        stdout: reader.join().unwrap_or_default(),
        stderr: Vec::new(),
    })
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
