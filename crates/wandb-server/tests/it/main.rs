//! Integration tests of wandb-server: hostile requests over real HTTP against a served store.

mod security;
mod support;
mod uploads;
mod web;
