//! The arguments of the commands that describe the command line itself: shell completions
//! and manual pages, both generated from the clap definitions of [`super::Args`].

use std::path::PathBuf;

use clap::Args as ClapArgs;
use clap_complete::Shell;

/// `meshtrust completions`
#[derive(Debug, ClapArgs)]
pub struct CompletionsArgs {
    /// Shell to complete for: bash, zsh, fish, powershell or elvish.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: Shell,
}

/// `meshtrust man`
#[derive(Debug, ClapArgs)]
pub struct ManArgs {
    /// Directory to write meshtrust.1 and one page per subcommand into (created if missing),
    /// e.g. /usr/local/share/man/man1.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace pages that already exist in DIR.
    #[arg(long)]
    pub force: bool,
}
