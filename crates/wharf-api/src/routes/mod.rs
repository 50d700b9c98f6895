//! The handlers, one file per area of the API.

pub(crate) mod containers;
pub(crate) mod egress;
pub(crate) mod logs;
pub(crate) mod ports;
pub(crate) mod proxy;
pub(crate) mod system;
pub mod tunnels;
