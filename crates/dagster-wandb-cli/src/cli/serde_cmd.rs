//! `dagster-wandb serde decode | encode`: step outputs to and from their JSON view.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_modules::{Limits, Module, Value};

use super::output::print_json;
use super::{CliError, CliResult};

#[derive(Debug, Subcommand)]
pub(crate) enum SerdeCommand {
    /// Print a step output as JSON ({"$bytes_hex": …}, {"$tuple": […]}, {"$dict_items": […]}, {"$bigint": "…"} for
    /// what JSON cannot hold). Nothing in the file is ever executed.
    Decode {
        /// The file, or a directory holding an output.* file.
        file: PathBuf,
        /// The module that wrote it; by default taken from the file name (output.pickle, x.joblib, …).
        #[arg(long, short = 'm')]
        module: Option<String>,
    },
    /// Read a JSON view on stdin and write the encoded bytes to stdout.
    Encode {
        /// The module to write.
        #[arg(long, short = 'm')]
        module: String,
        /// The module's parameters as a JSON object, e.g. '{"protocol": 4}' or '{"compress": 3}'.
        #[arg(long, short = 'p', value_name = "JSON")]
        parameters: Option<String>,
    },
}

pub(crate) fn run(command: &SerdeCommand) -> CliResult {
    match command {
        SerdeCommand::Decode { file, module } => decode(file, module.as_deref()),
        SerdeCommand::Encode { module, parameters } => encode(module, parameters.as_deref()),
    }
}

fn decode(file: &Path, module: Option<&str>) -> CliResult {
    let (module, path) = match module {
        Some(name) => (Module::from_name(name)?, file.to_path_buf()),
        None if file.is_dir() => Module::detect(file)
            .ok_or_else(|| CliError::Usage(format!("{} holds no output.* file of a known module", file.display())))?,
        None => (module_from_file_name(file)?, file.to_path_buf()),
    };
    let bytes = std::fs::read(&path).map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
    print_json(&module.decode_value_within(&bytes, &Limits::from_env()?)?.to_json_view())
}

/// The first dot-separated part of the file name that names a module: `output.pickle`, `x.joblib.z3`.
fn module_from_file_name(file: &Path) -> CliResult<Module> {
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    name.split('.')
        .skip(1)
        .find_map(|part| Module::from_name(part).ok())
        .ok_or_else(|| CliError::Usage(format!("cannot tell which module wrote {}; pass --module", file.display())))
}

fn encode(module: &str, parameters: Option<&str>) -> CliResult {
    let module = Module::from_name(module)?;
    let parameters = match parameters {
        None => serde_json::Map::new(),
        Some(text) => match serde_json::from_str(text) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => return Err(CliError::Usage(format!("--parameters must be a JSON object, got {text:?}"))),
        },
    };
    let options = module.options(&parameters)?;
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).map_err(|e| CliError::Usage(format!("cannot read stdin: {e}")))?;
    let bytes = module.encode_value(&Value::from_json_text(input.as_bytes())?, &options)?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&bytes).and_then(|()| stdout.flush()).map_err(CliError::Output)
}
