//! `dagster-wandb server`: an embedded store served over the W&B protocol.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use wandb_server::{ServerOptions, WandbServer};
use wandb_store::EmbeddedStore;

use super::{CliResult, absolute};

#[derive(Debug, clap::Args)]
pub(crate) struct ServerArgs {
    /// The embedded store to serve (created if missing or empty).
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    /// Address to listen on. Anything but loopback exposes the store to the network.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to listen on; 0 picks a free one (the URL is printed).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Require this API key (HTTP Basic `api:<key>`, what `WANDB_API_KEY` sends); any key is accepted without it.
    #[arg(long, env = "DAGSTER_WANDB_SERVER_API_KEY", hide_env_values = true, value_name = "KEY")]
    api_key: Option<String>,
    /// Entity reported to clients that do not name one.
    #[arg(long, default_value = wandb_api::DEFAULT_ENTITY)]
    default_entity: String,
    /// Make the entity refuse XXH128 artifact digests (the real client then re-hashes with MD5).
    #[arg(long)]
    no_xxhash: bool,
    /// Base URL to advertise in upload and download URLs when clients reach the server by another name.
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
}

pub(crate) fn run(args: &ServerArgs) -> CliResult {
    let store = EmbeddedStore::open(absolute(&args.store)?)?;
    let options = ServerOptions {
        api_key: args.api_key.clone(),
        default_entity: args.default_entity.clone(),
        xxhash_digests_enabled: !args.no_xxhash,
        public_url: args.public_url.clone(),
        ..ServerOptions::default()
    };
    wandb_api::runtime()?.block_on(async {
        let server = WandbServer::bind(store.clone(), SocketAddr::new(args.host, args.port), options).await?;
        #[allow(clippy::print_stdout, reason = "the URL is the command's output; scripts read it")]
        {
            println!("serving {} at {}", store.root().display(), server.base_url());
            println!("WANDB_BASE_URL={}", server.base_url());
        }
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        server
            .serve_until(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        Ok(())
    })
}
