//! The embedded API server through kube-rs, over HTTPS and in-process, as controllers use it.
//! One shared cluster serves most tests (a namespace each); tests of restarts and history
//! limits start their own.

mod harness;

mod bad_input;
mod crud;
mod lifecycle;
mod restart;
mod runtime;
mod watch;
