//! `lifeboat crd`: the CRDs as YAML, generated from the Rust types.

use std::path::PathBuf;

use super::CliError;
use crate::api;

/// Arguments of `lifeboat crd`.
#[derive(Debug, clap::Args)]
pub struct CrdArgs {
    /// Write one file per CRD (`lifeboat.dev_<plural>.yaml`) into this directory instead of printing.
    #[arg(long, env = "LIFEBOAT_CRD_OUT_DIR")]
    pub out_dir: Option<PathBuf>,
}

pub fn run(args: CrdArgs) -> Result<(), CliError> {
    let crds = api::all_crds();
    match args.out_dir {
        None => {
            for crd in &crds {
                print!("---\n{}", render(crd)?);
            }
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir).map_err(|source| CliError::Io {
                path: dir.clone(),
                source,
            })?;
            for crd in &crds {
                let path = dir.join(api::crd_file_name(crd));
                std::fs::write(&path, render(crd)?).map_err(|source| CliError::Io { path, source })?;
            }
        }
    }
    Ok(())
}

fn render(crd: &api::CustomResourceDefinition) -> Result<String, CliError> {
    api::crd_yaml(crd).map_err(|e| CliError::Other(format!("rendering CRD {}: {e}", crd.spec.names.plural)))
}
