//! Integration tests of wandb-launch: our agent and queues against our server, over real HTTP on loopback.

mod launch;
