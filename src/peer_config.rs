//! `peer --config FILE`: settings from a TOML file, one key per long flag, under the command line's.
//!
//! The file is turned into the flags it stands for and parsed by the same clap definitions, so every flag has its
//! key with nothing to keep in step, and a bad value is refused with the message the flag would get. What the
//! command line gives wins: a file's key is used only for a flag the command line left out (a list too:
//! `--peer` on the command line replaces the file's `peer` list, as the tracker's `torrents` does).

use std::collections::BTreeSet;

use clap::parser::ValueSource;
use clap::{ArgAction, CommandFactory, FromArgMatches};

use super::*;

/// Flags that are about the file itself, or not settings at all.
const NOT_KEYS: [&str; 4] = ["config", "print_config", "help", "version"];

/// Parses the command line with the settings of its `--config` file (if any) beneath it. Exits as clap does on
/// a bad command line, `--help` or `--version`.
///
/// # Errors
///
/// The file cannot be read, is not TOML, names a key that is no flag, or holds a value of the wrong shape.
pub(super) fn parse_with_config(argv: Vec<OsString>) -> anyhow::Result<Args> {
    let merged = with_config(argv)?;
    let matches = Args::command().try_get_matches_from(&merged).unwrap_or_else(|err| err.exit());
    Ok(Args::from_arg_matches(&matches).unwrap_or_else(|err| err.exit()))
}

/// Whether the command line asks for `--print-config` (which needs no PORT nor torrent).
pub(super) fn asks_to_print(argv: &[OsString]) -> bool {
    lenient(argv).get_flag("print_config")
}

/// The settings in effect, as a config file would hold them: every key with the command line's value, or the
/// file's, or the default; keys with no value (an empty list, no limit) are left out.
///
/// # Errors
///
/// As [`parse_with_config`].
pub(super) fn print_config(argv: Vec<OsString>) -> anyhow::Result<String> {
    let command = Args::command();
    let matches = lenient(&with_config(argv)?);
    let mut table = toml::Table::new();
    for arg in command.get_arguments() {
        let id = arg.get_id().as_str();
        if NOT_KEYS.contains(&id) {
            continue;
        }
        let Some(raw) = matches.get_raw(id) else { continue };
        // Paths absolute, so that the printed file reads back the same from wherever it is saved.
        let key = key_of(arg);
        let texts: Vec<String> = raw
            .map(|text| text.to_string_lossy().into_owned())
            .map(|text| if is_path(&key, &text) { absolute(&text) } else { text })
            .collect();
        let value = if matches!(arg.get_action(), ArgAction::SetTrue) {
            toml::Value::Boolean(texts.first().is_some_and(|text| text == "true"))
        } else if matches!(arg.get_action(), ArgAction::Append)
            || arg.get_num_args().is_some_and(|n| n.max_values() > 1)
        {
            toml::Value::Array(texts.iter().map(|text| toml_scalar(text)).collect())
        } else {
            let Some(text) = texts.first() else { continue };
            toml_scalar(text)
        };
        table.insert(key, value);
    }
    toml::to_string(&table).context("writing the settings as TOML")
}

/// The command line with its `--config` file's settings added as the flags they stand for, where the command
/// line does not give them.
fn with_config(argv: Vec<OsString>) -> anyhow::Result<Vec<OsString>> {
    let command = Args::command();
    // What the command line gives, before the file is read; nothing is required yet (the file may give PORT).
    let given = lenient(&argv);
    let Some(path) = given.get_one::<PathBuf>("config").cloned() else { return Ok(argv) };
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading the config file {}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not a valid peer config", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut flags: Vec<OsString> = Vec::new();
    let (mut port, mut torrents) = (None, Vec::new());
    for (key, value) in &table {
        let known = command.get_arguments().find(|arg| key_of(arg) == *key);
        let Some(arg) = known.filter(|arg| !NOT_KEYS.contains(&arg.get_id().as_str())) else {
            let keys: Vec<String> = setting_keys(&command).into_iter().collect();
            bail!("{}: unknown key `{key}` (the keys are: {})", path.display(), keys.join(", "));
        };
        if given.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine) {
            continue;
        }
        let context = || format!("{}: key `{key}`", path.display());
        let values: Vec<String> =
            flag_values(value).with_context(context)?.into_iter().map(|text| relative_to(base, key, text)).collect();
        match key.as_str() {
            "port" => port = values.into_iter().next(),
            "torrents" => torrents = values,
            _ if matches!(arg.get_action(), ArgAction::SetTrue) => match value {
                toml::Value::Boolean(true) => flags.push(format!("--{}", long_of(arg)).into()),
                toml::Value::Boolean(false) => {}
                _ => bail!("{}: is true or false", context()),
            },
            _ => flags.extend(values.iter().map(|text| format!("--{}={text}", long_of(arg)).into())),
        }
    }
    let mut merged = argv;
    merged.extend(flags);
    // The positionals: PORT, then the torrents. The file's go where the command line gave none (with PORT given
    // and no torrent, the file's torrents follow it).
    let port_given = given.value_source("port") == Some(ValueSource::CommandLine);
    let mut positionals: Vec<OsString> = Vec::new();
    if !port_given && let Some(port) = port {
        positionals.push(port.into());
    }
    if port_given || !positionals.is_empty() {
        positionals.extend(torrents.into_iter().map(OsString::from));
    }
    if !positionals.is_empty() {
        merged.push("--".into());
        merged.extend(positionals);
    }
    Ok(merged)
}

/// `argv` parsed with nothing required and errors ignored, to see what it gives.
fn lenient(argv: &[OsString]) -> clap::ArgMatches {
    Args::command().ignore_errors(true).try_get_matches_from(argv).unwrap_or_else(|err| err.exit())
}

/// Every key a file may hold, but for [`NOT_KEYS`].
fn setting_keys(command: &clap::Command) -> BTreeSet<String> {
    command.get_arguments().filter(|arg| !NOT_KEYS.contains(&arg.get_id().as_str())).map(key_of).collect()
}

/// A flag's key: its long name with underscores (`--max-peers` → `max_peers`, `--peer` → `peer`); a
/// positional's, its name (`port`, `torrents`).
fn key_of(arg: &clap::Arg) -> String {
    arg.get_long().map_or_else(|| arg.get_id().to_string(), |long| long.replace('-', "_"))
}

fn long_of(arg: &clap::Arg) -> String {
    arg.get_long().map_or_else(|| arg.get_id().to_string().replace('_', "-"), str::to_owned)
}

/// A TOML value as the text of the flag values it stands for: one, or one per element of an array.
fn flag_values(value: &toml::Value) -> anyhow::Result<Vec<String>> {
    let one = |value: &toml::Value| -> anyhow::Result<String> {
        Ok(match value {
            toml::Value::String(text) => text.clone(),
            toml::Value::Integer(number) => number.to_string(),
            toml::Value::Float(number) => number.to_string(),
            toml::Value::Boolean(flag) => flag.to_string(),
            other => bail!("expected a string, a number or true/false, not {}", other.type_str()),
        })
    };
    match value {
        toml::Value::Array(items) => items.iter().map(one).collect(),
        other => Ok(vec![one(other)?]),
    }
}

/// Paths in the file are relative to the file's folder: the download folder, the trace file and torrent files
/// (not magnet links).
fn relative_to(base: &Path, key: &str, text: String) -> String {
    if is_path(key, &text) && Path::new(&text).is_relative() {
        base.join(&text).to_string_lossy().into_owned()
    } else {
        text
    }
}

/// Whether the value `text` of `key` is a path: the download folder, the trace file or a torrent file.
fn is_path(key: &str, text: &str) -> bool {
    matches!(key, "dir" | "trace_file" | "rpc_auth" | "watch") || (key == "torrents" && !is_magnet(Path::new(text)))
}

fn absolute(text: &str) -> String {
    std::path::absolute(text).map_or_else(|_| text.to_owned(), |path| path.to_string_lossy().into_owned())
}

/// A value as TOML: a number when it reads as one, else a string.
fn toml_scalar(text: &str) -> toml::Value {
    if let Ok(number) = text.parse::<i64>() {
        toml::Value::Integer(number)
    } else if let Ok(number) = text.parse::<f64>()
        && number.is_finite()
        && text.contains('.')
    {
        toml::Value::Float(number)
    } else {
        toml::Value::String(text.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<OsString> {
        std::iter::once("peer").chain(args.iter().copied()).map(OsString::from).collect()
    }

    fn config_file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("peer.toml");
        std::fs::write(&path, text).expect("write the config");
        (dir, path)
    }

    #[test]
    fn every_key_of_the_file_sets_its_flag_and_the_command_line_wins() {
        let (dir, path) = config_file(
            r#"
            port = 6881
            torrents = ["a.torrent", "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567"]
            dir = "downloads"
            max_peers = 80
            max_connections = 300
            no_dht = true
            no_lsd = false
            only = ["*.mkv", "extras/**"]
            peer = ["10.0.0.2:6881", "10.0.0.3:6881"]
            upload_limit = "20M"
            download_limit = 1000000
            tracker_timeout = 2.5
            "#,
        );
        let config = path.to_str().expect("utf-8");
        let args = parse_with_config(argv(&["--config", config, "--max-peers", "9"])).expect("parsed");
        assert_eq!(args.port, 6881);
        assert_eq!(args.torrents[0], dir.path().join("a.torrent"), "relative to the file");
        assert!(args.torrents[1].to_string_lossy().starts_with("magnet:"), "a magnet link is no path");
        assert_eq!(args.dir, dir.path().join("downloads"));
        assert_eq!(args.max_peers, 9, "the command line wins");
        assert_eq!(args.max_connections, 300);
        assert!(args.no_dht && !args.no_lsd);
        assert_eq!(args.only.len(), 2);
        assert_eq!(args.peers, ["10.0.0.2:6881", "10.0.0.3:6881"]);
        assert_eq!((args.upload_limit, args.download_limit), (Some(20_000_000), Some(1_000_000)));
        assert!((args.tracker_timeout - 2.5).abs() < f64::EPSILON);

        // PORT and a torrent on the command line replace the file's.
        let args = parse_with_config(argv(&["--config", config, "7000", "b.torrent", "--peer", "10.0.0.9:1"]))
            .expect("parsed");
        assert_eq!((args.port, args.torrents.clone()), (7000, vec![PathBuf::from("b.torrent")]));
        assert_eq!(args.peers, ["10.0.0.9:1"], "a list on the command line replaces the file's");
        // PORT alone: the file's torrents follow it.
        let args = parse_with_config(argv(&["--config", config, "7001"])).expect("parsed");
        assert_eq!((args.port, args.torrents.len()), (7001, 2));
    }

    #[test]
    fn an_unknown_key_or_a_value_of_the_wrong_shape_is_an_error_naming_it() {
        let (_dir, path) = config_file("port = 1\ntorrents = [\"a.torrent\"]\nmax_peer = 3\n");
        let error = parse_with_config(argv(&["--config", path.to_str().expect("utf-8")])).expect_err("unknown");
        let text = format!("{error:#}");
        assert!(text.contains("unknown key `max_peer`") && text.contains("max_peers"), "{text}");

        let (_dir, path) = config_file("no_dht = \"yes\"\n");
        let error = parse_with_config(argv(&["--config", path.to_str().expect("utf-8")])).expect_err("not a bool");
        assert!(format!("{error:#}").contains("key `no_dht`"), "{error:#}");

        let (_dir, path) = config_file("max_peers = { a = 1 }\n");
        let error = parse_with_config(argv(&["--config", path.to_str().expect("utf-8")])).expect_err("a table");
        assert!(format!("{error:#}").contains("key `max_peers`: expected a string"), "{error:#}");

        let (_dir, path) = config_file("config = \"other.toml\"\n");
        let error = parse_with_config(argv(&["--config", path.to_str().expect("utf-8")])).expect_err("config");
        assert!(format!("{error:#}").contains("unknown key `config`"), "{error:#}");

        let (_dir, path) = config_file("port = [\n");
        let error = parse_with_config(argv(&["--config", path.to_str().expect("utf-8")])).expect_err("not TOML");
        assert!(format!("{error:#}").contains("is not a valid peer config"), "{error:#}");

        let error = parse_with_config(argv(&["--config", "/nonexistent/peer.toml"])).expect_err("missing");
        assert!(format!("{error:#}").contains("reading the config file /nonexistent/peer.toml"), "{error:#}");
    }

    #[test]
    fn the_printed_settings_read_back_as_the_same_settings() {
        let (dir, path) = config_file("port = 6881\ntorrents = [\"a.torrent\"]\nonly = [\"*.iso\"]\nno_dht = true\n");
        let config = path.to_str().expect("utf-8");
        let printed = print_config(argv(&["--config", config, "--upload-limit", "512Ki"])).expect("printed");
        let table: toml::Table = toml::from_str(&printed).expect("TOML");
        assert_eq!(table["port"].as_integer(), Some(6881));
        assert_eq!(table["max_peers"].as_integer(), Some(50), "defaults are shown: {printed}");
        assert_eq!(table["no_dht"].as_bool(), Some(true));
        assert_eq!(table["upload_limit"].as_str(), Some("512Ki"));
        assert!(!table.contains_key("config") && !table.contains_key("print_config"), "{printed}");
        for key in setting_keys(&Args::command()) {
            let unset = [
                "peer",
                "dht_bootstrap",
                "download_limit",
                "dht_port",
                "trace_file",
                "rpc",
                "rpc_auth",
                "rpc_host",
                "watch",
            ];
            assert!(table.contains_key(&key) || unset.contains(&key.as_str()), "{key} missing from: {printed}");
        }

        let again = dir.path().join("again.toml");
        std::fs::write(&again, &printed).expect("write");
        let first = parse_with_config(argv(&["--config", config, "--upload-limit", "512Ki"])).expect("parsed");
        let second = parse_with_config(argv(&["--config", again.to_str().expect("utf-8")])).expect("parsed");
        let cwd = std::env::current_dir().expect("cwd");
        assert_eq!(second.dir, cwd, "the default folder, printed absolute");
        assert_eq!(
            format!("{:?}", Args { dir: cwd, ..first }),
            format!("{second:?}").replace("again.toml", "peer.toml")
        );

        // With nothing required given, the defaults alone.
        let printed = print_config(argv(&["--print-config"])).expect("printed");
        assert!(printed.contains("max_connections = 200"), "{printed}");
    }
}
