//! Starting the server: in its directory, with the token in its environment only, tied to the
//! xtask or detached from it, one start at a time.

use std::fs::{self, File};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result};

use super::identity::write_pid_file;
use crate::layout::Layout;
use crate::server::secrets::ServerEnv;
use crate::util::files;
use crate::util::paths::show;

#[derive(Debug, Clone, Copy)]
pub(crate) enum Mode {
    /// Tied to the xtask, printing to its terminal (`run`).
    Foreground,
    /// Outlives the xtask, printing to `logs/nats-server.out` (`run --detach`).
    Detached,
    /// Tied to the xtask, printing to `logs/nats-server.out` (smoke's temporary server).
    Attached,
}

/// Starts the server in its directory with its secrets in its environment only.
pub(crate) fn spawn(layout: &Layout, env: &ServerEnv, mode: Mode) -> Result<Child> {
    layout.create_working_dirs()?;
    // A request to stop an earlier server is not one to stop this one.
    let _ = fs::remove_file(layout.stop_request());
    let mut command = Command::new(layout.binary());
    command
        .arg("-c")
        .arg(layout.config())
        .arg("--ports_file_dir")
        .arg(&layout.dir)
        .current_dir(&layout.dir)
        .envs(env.vars())
        .stdin(Stdio::null());
    if matches!(mode, Mode::Detached | Mode::Attached) {
        // Truncated at every start: what an earlier run printed would mislead a diagnosis.
        let out = File::create(layout.output_file())
            .with_context(|| format!("cannot write `{}`", show(&layout.output_file())))?;
        command.stdout(out.try_clone()?).stderr(out);
    }
    match mode {
        Mode::Foreground | Mode::Attached => tie_to_xtask(&mut command),
        Mode::Detached => detach(&mut command),
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start `{}`", show(&layout.binary())))?;
    if let Err(e) = write_pid_file(layout, child.id()) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    Ok(child)
}

/// On Unix the server gets its own process group, so that Ctrl-C reaches only the xtask,
/// which then stops the server gracefully. On Linux the kernel also stops it if the xtask dies.
#[cfg(unix)]
fn tie_to_xtask(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    command.process_group(0);
    #[cfg(target_os = "linux")]
    // SAFETY: prctl is async-signal-safe and touches only the new process.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// On Windows the server shares the console, so Ctrl-C and closing the window reach it too.
#[cfg(windows)]
fn tie_to_xtask(_: &mut Command) {}

/// A detached server outlives the terminal: its own process group on Unix, no console on Windows.
#[cfg(unix)]
fn detach(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    command.process_group(0);
}

#[cfg(windows)]
fn detach(command: &mut Command) {
    use std::os::windows::io::AsRawHandle;
    use std::os::windows::process::CommandExt;
    use windows_sys::Win32::Foundation::{HANDLE_FLAG_INHERIT, SetHandleInformation};
    const DETACHED_PROCESS: u32 = 0x0000_0008;
    const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;
    // Windows hands a child every inheritable handle of its parent, the xtask's own stdout and
    // stderr included (rust-lang/rust#54760): a detached server would hold them open, and
    // whoever reads the xtask's output would wait for the server to exit. The standard
    // library duplicates these handles afresh for any child that is meant to inherit them.
    let handles = [
        std::io::stdin().as_raw_handle(),
        std::io::stdout().as_raw_handle(),
        std::io::stderr().as_raw_handle(),
    ];
    for handle in handles.into_iter().filter(|h| !h.is_null()) {
        // SAFETY: a standard handle of this process; only its inheritance flag changes.
        unsafe { SetHandleInformation(handle, HANDLE_FLAG_INHERIT, 0) };
    }
    command.creation_flags(DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP);
}

/// Holds `.run.lock` in the server's directory, so that two runs of one checkout cannot both
/// find it stopped and start a server.
pub(crate) fn run_lock(layout: &Layout) -> Result<File> {
    fs::create_dir_all(&layout.dir)
        .with_context(|| format!("cannot create `{}`", show(&layout.dir)))?;
    files::lock(&layout.run_lock(), "run")
}

/// Removes the run lock, and the directories from the server's up to `made` (the topmost
/// one the run created) as far as they are empty.
pub(crate) fn forget_run_lock(layout: &Layout, made: Option<&Path>) {
    let _ = fs::remove_file(layout.run_lock());
    let Some(made) = made else {
        return;
    };
    for dir in layout.dir.ancestors() {
        if fs::remove_dir(dir).is_err() || dir == made {
            break;
        }
    }
}
