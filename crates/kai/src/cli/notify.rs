//! `kai notify --test <env>`: send a test notice through every channel configured
//! for an environment.

use std::path::PathBuf;

use crate::error::CliError;
use crate::notify;
use crate::settings::Settings;

/// Send a test notice through every notification channel configured for an
/// environment (its own [notify], else kai.toml's), to check addresses, servers and
/// credentials before a deploy needs them. Exit status 1 when a channel failed, 2
/// when nothing is configured.
#[derive(Debug, clap::Args)]
pub struct NotifyArgs {
    /// The environment whose channels get the test notice.
    #[arg(long = "test", value_name = "ENV")]
    pub env: String,
}

pub async fn run(config: &Option<PathBuf>, args: NotifyArgs, settings: &Settings) -> Result<u8, CliError> {
    let config = crate::config_files::load_config(config, settings)?;
    crate::config_files::environment(&config, &args.env)?;
    let channels = notify::applicable(&config, &args.env).filter(|n| n.email.is_some() || n.webhook.is_some());
    let Some(channels) = channels else {
        return Err(CliError::usage(
            format!("no notification channel is configured for {}", args.env),
            Some(format!("add [notify] to kai.toml or to environments/{}.toml", args.env)),
        ));
    };
    let notice = notify::notice::test_notice(&args.env, &notify::who(settings));
    let mut failed = false;
    for (channel, result) in notify::send(channels, &notice, settings).await {
        match result {
            Ok(done) => println!("{channel}: {done}"),
            Err(e) => {
                eprintln!("error: notification by {channel} failed: {e}");
                failed = true;
            }
        }
    }
    Ok(u8::from(failed))
}
