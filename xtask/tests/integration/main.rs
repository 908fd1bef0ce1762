//! The integration tests, in one binary: the xtask run against real nats-server binaries.

// Real servers, release archives, a loopback mirror and a sandbox for each test.
mod support;

// `cargo xtask setup`: download, verification, install, config and token.
mod setup;

// `run`, `stop` and `status` of a single server.
mod lifecycle;

// `run --cluster`, and the other tasks on a cluster.
mod cluster;

// The day-two tasks: logs, reload, reset, token, context, env, restart, cache, exec, uninstall.
mod day_two;

// `smoke` and `monitor`.
mod smoke;

// `bench`.
mod bench;

// The README's story, one command after another, as a user follows it.
mod story;

// `setup --tls`, and every task over TLS.
mod tls;

// `setup --auth jwt`: accounts and users, and every task with their credentials.
mod jwt;
