//! Which process is this checkout's server: the pid file, and checks that the process behind a
//! pid is still our nats-server before anything signals it.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use sysinfo::{Pid, ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System, UpdateKind};

use crate::layout::Layout;
use crate::util::files::write_atomically;
use crate::util::paths::show;

/// The pid of this checkout's server, if it runs. A pid file naming a process that is gone,
/// or that is not our nats-server (the pid was reused), is removed, saying so on stderr.
pub(crate) fn reconcile_pid_file(layout: &Layout) -> Result<Option<u32>> {
    let path = layout.pid_file();
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", show(&path))),
    };
    let pid: Option<u32> = text.trim().parse().ok();
    match pid {
        Some(pid) if is_our_server(pid, layout) => Ok(Some(pid)),
        _ => {
            let why = match pid {
                Some(pid) if is_alive(pid) => format!("pid {pid} is now another program"),
                Some(pid) => format!("pid {pid} is not running"),
                None => "it holds no pid".to_string(),
            };
            eprintln!("removing stale `{}`: {why}", show(&path));
            fs::remove_file(&path).with_context(|| format!("cannot remove `{}`", show(&path)))?;
            remove_stale_ports_files(layout);
            Ok(None)
        }
    }
}

pub(super) fn write_pid_file(layout: &Layout, pid: u32) -> Result<()> {
    write_atomically(&layout.pid_file(), format!("{pid}\n").as_bytes())
}

/// Removes the pid file if it still names `pid` (another run may have written its own since),
/// and the ports files of servers that are gone.
pub(crate) fn remove_pid_file(layout: &Layout, pid: u32) {
    let path = layout.pid_file();
    if fs::read_to_string(&path).is_ok_and(|text| text.trim() == pid.to_string()) {
        let _ = fs::remove_file(path);
    }
    remove_stale_ports_files(layout);
}

/// Removes every `nats-server*_<pid>.ports` in the server's directory whose pid is no longer
/// our server: nats-server removes its own when it exits cleanly, but not when it is killed, nor
/// when Windows terminates it.
fn remove_stale_ports_files(layout: &Layout) {
    for entry in fs::read_dir(&layout.dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix("nats-server")
            .and_then(|rest| rest.strip_suffix(".ports"))
            .and_then(|rest| rest.rsplit_once('_'))
            .and_then(|(_, pid)| pid.parse::<u32>().ok());
        if let Some(pid) = pid
            && !is_our_server(pid, layout)
        {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// What the OS says of `pid`: its executable and command line.
pub(super) fn process_info(pid: u32) -> (System, Pid) {
    let pid = Pid::from_u32(pid);
    let mut system = System::new();
    let what = ProcessRefreshKind::nothing()
        .with_exe(UpdateKind::Always)
        .with_cmd(UpdateKind::Always);
    system.refresh_processes_specifics(ProcessesToUpdate::Some(&[pid]), true, what);
    (system, pid)
}

/// Whether `pid` runs; a zombie, which only waits to be reaped, does not.
fn is_alive(pid: u32) -> bool {
    let (system, pid) = process_info(pid);
    system.process(pid).is_some_and(|p| !is_exited(p.status()))
}

fn is_exited(status: ProcessStatus) -> bool {
    matches!(status, ProcessStatus::Zombie | ProcessStatus::Dead)
}

/// Whether `pid` is a nats-server started for `layout`: its executable is called nats-server
/// and its command line names this directory as its ports directory. Either alone could
/// match a stranger: another nats-server, or a program that happens to name the directory.
pub(super) fn is_our_server(pid: u32, layout: &Layout) -> bool {
    let (system, sys_pid) = process_info(pid);
    let Some(process) = system.process(sys_pid) else {
        return false;
    };
    if is_exited(process.status()) {
        return false;
    }
    let exe_name = process
        .exe()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned());
    let named_nats_server = exe_name
        .as_deref()
        .or(process.name().to_str())
        .is_some_and(|n| n.starts_with("nats-server"));
    let cmd = process.cmd();
    // A command line the OS does not show us (another user's process, an elevated one on
    // Windows) is one we could not signal anyway: the name has to do.
    let ours = cmd.is_empty()
        || cmd.windows(2).any(|pair| {
            pair[0] == "--ports_file_dir" && same_dir(Path::new(&pair[1]), &layout.dir)
        });
    named_nats_server && ours
}

/// Whether two paths name one directory: equal component by component (a trailing slash does
/// not matter), or the same once symbolic links are resolved.
fn same_dir(a: &Path, b: &Path) -> bool {
    a == b || matches!((fs::canonicalize(a), fs::canonicalize(b)), (Ok(a), Ok(b)) if a == b)
}
