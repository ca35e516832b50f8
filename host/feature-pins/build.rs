//! Empty: a build script makes cargo resolve the `[build-dependencies]`
//! pins (proc-macro dependencies such as `syn`) with the host's other
//! build-time dependencies.
fn main() {}
