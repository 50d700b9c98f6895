//! Loopback tests of the client against the reference server and scripted servers.
