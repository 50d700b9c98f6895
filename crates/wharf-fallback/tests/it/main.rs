//! Loopback tests of the client against the reference server and scripted servers. Nothing
//! here measures time: timeouts are asserted as errors, never as durations.

mod client;
mod server;
mod support;
