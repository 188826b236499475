//! Integration tests of wandb-store: the embedded store on real files, several processes' worth of writers.

mod failures;
mod gc;
mod store;
mod support;
