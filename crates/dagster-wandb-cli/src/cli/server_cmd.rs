//! `dagster-wandb server`: an embedded store served over the W&B protocol; `server hash-key` for users files.

use std::io::{BufRead, IsTerminal};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use wandb_server::{ServerOptions, Users, WandbServer};
use wandb_store::EmbeddedStore;

use super::output::{notice, print_line};
use super::{CliError, CliResult, absolute};

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct ServerArgs {
    #[command(subcommand)]
    command: Option<ServerCommand>,
    /// The embedded store to serve (created if missing or empty).
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
    /// Address to listen on. Anything but loopback exposes the store to the network, and needs --users or
    /// --api-key.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to listen on; 0 picks a free one (the URL is printed).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// The users, their API keys (or `blake3:` hashes, see `server hash-key`) and the entities each may use,
    /// a JSON file: {"users": [{"name": "alice", "api_key": "…", "entities": ["alice", "ml-team"]}]}.
    #[arg(long, value_name = "FILE", conflicts_with = "api_key")]
    users: Option<PathBuf>,
    /// One API key for one user who may use every entity (HTTP Basic `api:<key>`, what `WANDB_API_KEY` sends).
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
    /// The largest GraphQL request body accepted, in MiB.
    #[arg(long, default_value_t = 16, value_name = "MIB")]
    max_graphql_mib: usize,
    /// Delay every file download this long, as a distant object store would (for benchmarks).
    #[arg(long, default_value_t = 0, value_name = "MS", hide = true)]
    download_latency_ms: u64,
    /// Delay every upload this long, as a distant object store would (for tests of long uploads).
    #[arg(long, default_value_t = 0, value_name = "MS", hide = true)]
    upload_latency_ms: u64,
}

#[derive(Debug, clap::Subcommand)]
enum ServerCommand {
    /// Print the `blake3:` hash of an API key read from standard input, for `api_key_hash` in a users file.
    HashKey,
}

pub(crate) fn run(args: &ServerArgs) -> CliResult {
    if let Some(ServerCommand::HashKey) = args.command {
        return hash_key();
    }
    let store = args.store.as_deref().ok_or_else(|| CliError::Usage("give --store DIR, the store to serve".into()))?;
    let store = EmbeddedStore::open(absolute(store)?)?;
    let users = args.users.as_deref().map(Users::load).transpose()?;
    let open = users.is_none() && args.api_key.is_none();
    let options = ServerOptions {
        api_key: args.api_key.clone(),
        users,
        default_entity: args.default_entity.clone(),
        xxhash_digests_enabled: !args.no_xxhash,
        public_url: args.public_url.clone(),
        max_graphql_bytes: args.max_graphql_mib.saturating_mul(1 << 20),
        ..ServerOptions::default()
    };
    wandb_api::runtime()?.block_on(async {
        let server = WandbServer::bind(store.clone(), SocketAddr::new(args.host, args.port), options).await?;
        server.faults().set_download_latency(std::time::Duration::from_millis(args.download_latency_ms));
        server.faults().set_upload_latency(std::time::Duration::from_millis(args.upload_latency_ms));
        if open {
            notice(&format!(
                "open mode: anyone who can reach {} may read and write every entity; give --users FILE or --api-key \
                 to require keys",
                server.base_url()
            ));
        }
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

/// `dagster-wandb ui`: the web view of an embedded store, read-only, on loopback.
#[derive(Debug, clap::Args)]
pub(crate) struct UiArgs {
    /// The store to show (default: the embedded store of `WANDB_BASE_URL`, else the default directory).
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
    /// The port (0 picks a free one).
    #[arg(long, default_value_t = 8090)]
    port: u16,
}

pub(crate) fn run_ui(args: &UiArgs) -> CliResult {
    let dir = match &args.store {
        Some(dir) => absolute(dir)?,
        None => match wandb_api::Settings::from_env()?.base_url {
            wandb_api::BaseUrl::Embedded(dir) => dir,
            server => {
                return Err(CliError::Usage(format!(
                    "WANDB_BASE_URL is {}, a server, which serves its own pages; give --store DIR for a local store",
                    server.to_url()
                )));
            }
        },
    };
    // A browser over what was logged: a mistyped directory is an error, not an empty store.
    let store = EmbeddedStore::open_existing(dir)?;
    let options = ServerOptions { web_only: true, ..ServerOptions::default() };
    wandb_api::runtime()?.block_on(async {
        let addr = SocketAddr::new(IpAddr::from([127, 0, 0, 1]), args.port);
        let server = WandbServer::bind(store.clone(), addr, options).await?;
        #[allow(clippy::print_stdout, reason = "the URL is the command's output; scripts read it")]
        {
            println!("showing {} at {}", store.root().display(), server.base_url());
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

fn hash_key() -> CliResult {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        notice("type the API key, then Enter:");
    }
    let mut key = String::new();
    stdin.lock().read_line(&mut key).map_err(|e| CliError::Usage(format!("cannot read the key: {e}")))?;
    let key = key.trim_end_matches(['\r', '\n']);
    if key.chars().count() < wandb_server::MIN_API_KEY_LEN {
        return Err(CliError::Usage(format!(
            "an API key needs {}+ characters; this one has {}",
            wandb_server::MIN_API_KEY_LEN,
            key.chars().count()
        )));
    }
    print_line(&wandb_server::hash_api_key(key))
}
