//! `cargo xtask status`: is the server running, where, and how busy.

use std::process::ExitCode;

use anyhow::Result;
use serde_json::{Value, json};

use crate::cluster;
use crate::install;
use crate::layout::Layout;
use crate::lifecycle::NOT_RUNNING;
use crate::server::tls::{self, RENEW_WITHIN};
use crate::server::{self, Endpoints};
use crate::util::paths::show;
use crate::util::units::{self, bytes};

/// Show whether the server runs, with its pid, addresses and usage.
///
/// Prints the pid, version, uptime, the three listen addresses, the connection count and
/// JetStream usage. Exits 0 when the server runs and 3 when it does not, as service managers do.
#[derive(Debug, clap::Args)]
pub(crate) struct Status {
    /// Print one JSON object on stdout instead.
    #[arg(long)]
    json: bool,
}

impl Status {
    pub(crate) fn run(&self, layout: &Layout) -> Result<ExitCode> {
        let Some(pid) = server::reconcile_pid_file(layout)? else {
            if !cluster::recorded_names(layout).is_empty() {
                return self.cluster(layout);
            }
            if self.json {
                println!("{}", json!({"running": false, "mode": "single"}));
            } else if !layout.binary().is_file() {
                println!(
                    "nats-server is not running, nor installed in `{}`: `cargo xtask run` \
                     installs and starts it",
                    crate::util::paths::show(&layout.dir)
                );
            } else {
                println!("nats-server is not running (`cargo xtask run` starts it)");
            }
            return Ok(ExitCode::from(NOT_RUNNING));
        };
        let endpoints = Endpoints::of(layout, pid);
        if let Some(warning) = endpoints.as_ref().and_then(Endpoints::exposure_warning) {
            eprintln!("{warning}");
        }
        let mut report = report(pid, endpoints.as_ref());
        if let Some(installed) = installed_but_not_running(layout, &[&report]) {
            report["installed_version"] = json!(installed);
        }
        report_certificate(&mut report, layout, "the server's");
        if self.json {
            println!("{report}");
        } else {
            print!("{}", human(&report));
        }
        Ok(ExitCode::SUCCESS)
    }
}

impl Status {
    /// Every node of the cluster: exit 0 only when all of them run.
    fn cluster(&self, layout: &Layout) -> Result<ExitCode> {
        let names = cluster::recorded_names(layout);
        let mut nodes = Vec::new();
        let mut running = Vec::new();
        for name in &names {
            let node = layout.node(name);
            let pid = server::reconcile_pid_file(&node)?;
            let node_endpoints = pid.and_then(|pid| Endpoints::of(&node, pid));
            if let Some(warning) = node_endpoints
                .as_ref()
                .and_then(Endpoints::exposure_warning)
            {
                eprintln!("{name}: {warning}");
            }
            let mut report = match pid {
                Some(pid) => report(pid, node_endpoints.as_ref()),
                None => json!({"running": false}),
            };
            if let Some(fields) = report.as_object_mut() {
                fields.remove("mode");
            }
            report["name"] = json!(name);
            report_certificate(&mut report, &node, &format!("node {name}'s"));
            nodes.push(report);
            running.extend(node_endpoints);
        }
        let meta = cluster::meta_group(&running);
        for node in &mut nodes {
            // The meta group names each node as its config does (`server_name`).
            let name = node["server_name"].as_str().unwrap_or_default().to_string();
            node["meta_leader"] = json!(meta.as_ref().is_some_and(|m| m.leader == name));
            node["current"] = json!(meta.as_ref().is_some_and(|m| {
                m.leader == name || m.peers.iter().any(|p| p.name == name && p.current)
            }));
        }
        let down: Vec<&str> = nodes
            .iter()
            .filter(|n| n["running"] != true)
            .filter_map(|n| n["name"].as_str())
            .collect();
        let installed = installed_but_not_running(layout, &nodes.iter().collect::<Vec<_>>());
        let mut report = json!({
            "mode": "cluster",
            "running": down.is_empty(),
            "meta_leader": meta.as_ref().map(|m| m.leader.clone()),
            "nodes": nodes,
        });
        if let Some(installed) = installed {
            report["installed_version"] = json!(installed);
        }
        if self.json {
            println!("{report}");
        } else {
            print!("{}", human_cluster(&report));
        }
        if down.is_empty() {
            Ok(ExitCode::SUCCESS)
        } else if down.len() == names.len() {
            // Said on stdout already.
            Ok(ExitCode::from(NOT_RUNNING))
        } else {
            eprintln!(
                "{} {} not running",
                units::named("node", &down),
                units::is_are(down.len())
            );
            Ok(ExitCode::from(NOT_RUNNING))
        }
    }
}

/// The version setup installed, if a server in `reports` runs another one: what `restart`
/// would change.
fn installed_but_not_running(layout: &Layout, reports: &[&Value]) -> Option<String> {
    let installed = install::manifest_version(layout)?.to_string();
    reports
        .iter()
        .filter_map(|report| report["version"].as_str())
        .any(|running| running != installed)
        .then_some(installed)
}

/// What to say of it.
fn installed_text(report: &Value) -> Option<String> {
    let installed = report["installed_version"].as_str()?;
    Some(format!(
        "{installed}, not running yet: `cargo xtask restart` runs it"
    ))
}

/// The certificate the config of `layout` serves and its days left, in `report`; a warning
/// when it has fewer than 30 days left, naming `whose` it is.
fn report_certificate(report: &mut Value, layout: &Layout, whose: &str) {
    let Some((cert, days)) = tls::days_left(layout) else {
        return;
    };
    report["certificate"] = json!({"file": cert, "days_left": days});
    if days < RENEW_WITHIN.as_secs() / 86_400 {
        eprintln!(
            "warning: {whose} certificate `{}` {}: `cargo xtask setup` (or `run`) issues a new \
             one, `cargo xtask reload` serves it",
            show(&cert),
            match days {
                0 => "has expired, or expires today".to_string(),
                1 => "expires tomorrow".to_string(),
                days => format!("expires in {days} days"),
            }
        );
    }
}

fn human_cluster(report: &Value) -> String {
    let nodes = report["nodes"].as_array().cloned().unwrap_or_default();
    let running = nodes.iter().filter(|n| n["running"] == true).count();
    let leader = report["meta_leader"].as_str().unwrap_or("none");
    if running == 0 {
        return format!(
            "nothing is running: not the single nats-server, nor any of the {} nodes of this \
             checkout's cluster (`cargo xtask run` or `cargo xtask run --cluster` starts one)\n",
            nodes.len()
        );
    }
    let mut text = format!(
        "cluster of {} nodes: {running} running; meta leader {leader}\n",
        nodes.len()
    );
    for node in &nodes {
        let name = node["name"].as_str().unwrap_or("?");
        if node["running"] != true {
            text.push_str(&format!("  {name}  not running\n"));
            continue;
        }
        let role = if node["meta_leader"] == true {
            "meta leader"
        } else if node["current"] == true {
            "current"
        } else {
            "not current"
        };
        let certificate = node["certificate"]["days_left"]
            .as_u64()
            .map_or(String::new(), |days| {
                format!("  certificate {days} days left")
            });
        text.push_str(&format!(
            "  {name}  pid {}  {}  {}  {}  {role}{certificate}\n",
            node["pid"],
            node["client_url"].as_str().unwrap_or("?"),
            node["monitoring_url"].as_str().unwrap_or("?"),
            units::counted(&node["connections"], "connection"),
        ));
        if node["health"]["ok"] == false {
            text.push_str(&format!(
                "      health {}\n",
                health_text(&node["health"]).as_str().unwrap_or("?")
            ));
        }
    }
    if let Some(installed) = installed_text(report) {
        text.push_str(&format!("installed nats-server {installed}\n"));
    }
    text
}

/// Everything status knows, as the JSON that `--json` prints.
fn report(pid: u32, endpoints: Option<&Endpoints>) -> Value {
    let mut report = json!({"running": true, "mode": "single", "pid": pid});
    let Some(endpoints) = endpoints else {
        return report;
    };
    report["client_url"] = json!(endpoints.client);
    report["monitoring_url"] = json!(endpoints.monitoring);
    report["websocket_url"] = json!(endpoints.websocket);
    report["exposed"] = json!(endpoints.exposed);
    let agent = endpoints.agent();
    let varz = xtask_probe::get_json(&agent, &format!("{}/varz", endpoints.monitoring));
    let varz = match varz {
        Ok(varz) => varz,
        Err(e) => {
            report["monitoring_error"] = json!(format!("{e:#}"));
            return report;
        }
    };
    report["health"] = health(&agent, &endpoints.monitoring);
    report["version"] = varz["version"].clone();
    report["server_name"] = varz["server_name"].clone();
    report["uptime"] = varz["uptime"].clone();
    report["connections"] = varz["connections"].clone();
    if let Ok(jsz) = xtask_probe::get_json(&agent, &format!("{}/jsz", endpoints.monitoring)) {
        report["jetstream"] = json!({
            "streams": jsz["streams"],
            "consumers": jsz["consumers"],
            "messages": jsz["messages"],
            "bytes": jsz["bytes"],
            "memory": jsz["memory"],
            "storage": jsz["storage"],
            "max_memory": jsz["config"]["max_memory"],
            "max_storage": jsz["config"]["max_storage"],
        });
    }
    report
}

/// What `/healthz` says: `{"ok": true}`, or `{"ok": false, "error": "..."}` with the server's
/// words (JetStream not current, say).
fn health(agent: &xtask_probe::Agent, monitoring: &str) -> Value {
    match xtask_probe::get(agent, &format!("{monitoring}/healthz")) {
        Ok((200, _)) => json!({"ok": true}),
        Ok((status, body)) => {
            let said: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let error = said["error"]
                .as_str()
                .map_or_else(|| format!("{status} {}", body.trim()), str::to_string);
            json!({"ok": false, "error": error})
        }
        Err(e) => json!({"ok": false, "error": format!("{e:#}")}),
    }
}

/// The health as a person reads it.
fn health_text(health: &Value) -> Value {
    match health["ok"].as_bool() {
        Some(true) => json!("ok"),
        Some(false) => json!(format!(
            "NOT OK: {}",
            health["error"].as_str().unwrap_or("?")
        )),
        None => Value::Null,
    }
}

fn human(report: &Value) -> String {
    let mut text = format!("nats-server is running (pid {})\n", report["pid"]);
    let line = |text: &mut String, label: &str, value: &Value| {
        if let Some(value) = value
            .as_str()
            .map(str::to_string)
            .or_else(|| (!value.is_null()).then(|| value.to_string()))
        {
            text.push_str(&format!("  {label:<12}{value}\n"));
        }
    };
    line(&mut text, "health", &health_text(&report["health"]));
    line(&mut text, "version", &report["version"]);
    line(&mut text, "installed", &json!(installed_text(report)));
    line(&mut text, "uptime", &report["uptime"]);
    line(&mut text, "client", &report["client_url"]);
    line(&mut text, "monitoring", &report["monitoring_url"]);
    line(&mut text, "websocket", &report["websocket_url"]);
    line(&mut text, "connections", &report["connections"]);
    if let Some(days) = report["certificate"]["days_left"].as_u64() {
        line(
            &mut text,
            "certificate",
            &json!(format!("{days} days left")),
        );
    }
    if let Some(js) = report.get("jetstream") {
        let usage = format!(
            "{}, {}, {}; memory {} of {}, file {} of {}",
            units::counted(&js["streams"], "stream"),
            units::counted(&js["consumers"], "consumer"),
            units::counted(&js["messages"], "message"),
            bytes(&js["memory"]),
            bytes(&js["max_memory"]),
            bytes(&js["storage"]),
            bytes(&js["max_storage"]),
        );
        line(&mut text, "jetstream", &json!(usage));
    }
    line(&mut text, "note", &report["monitoring_error"]);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_human_report_shows_what_is_known() {
        let report = json!({"running": true, "pid": 7, "version": "2.10.26", "client_url": "nats://127.0.0.1:4222",
            "jetstream": {"streams": 1, "consumers": 2, "messages": 3, "memory": 0, "max_memory": 1073741824u64,
                          "storage": 2048, "max_storage": 10737418240u64}});
        let text = human(&report);
        assert!(text.starts_with("nats-server is running (pid 7)\n"));
        assert!(text.contains("  version     2.10.26\n"));
        assert!(text.contains("  client      nats://127.0.0.1:4222\n"));
        assert!(text.contains(
            "1 stream, 2 consumers, 3 messages; memory 0 B of 1.0 GiB, file 2.0 KiB of 10.0 GiB"
        ));
        assert!(!text.contains("websocket"));
        assert!(!text.contains("health"));
        let unhealthy = json!({"running": true, "pid": 7,
            "health": {"ok": false, "error": "JetStream is not current with the meta leader"}});
        assert!(
            human(&unhealthy)
                .contains("  health      NOT OK: JetStream is not current with the meta leader\n")
        );
    }
}
