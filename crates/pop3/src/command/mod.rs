//! One file per command or small group of commands, each an `impl Session` block.

mod auth;
mod capa;
mod quit;
mod stls;
mod transaction;
mod xclient;
