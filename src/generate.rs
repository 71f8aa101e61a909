//! `PROGRAM --generate KIND`: a man page or a shell completion script, made from the program's clap definition
//! and printed to stdout, as ripgrep does. Packagers and users install these files; nothing is written to disk here.
//!
//! Each `src/bin/*.rs` main asks [`requested`] before the program's own `main`, because the programs' `Args`
//! have required positionals (`peer PORT ...`) that a plain `--generate man` would not satisfy.

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::builder::EnumValueParser;
use clap::{Arg, ArgAction, Command, CommandFactory, ValueEnum};
use clap_complete::Shell;

/// What `--generate` can print. The doc comments are the kinds' help in the outputs themselves, so they stay
/// plain text: shells quote them differently (fish expanded a `$` here).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// A man page (roff), to install as NAME.1 in a man1 folder
    Man,
    /// A bash completion script, to install as NAME in the bash-completion completions folder
    CompleteBash,
    /// A zsh completion script, to install as _NAME in a folder on the zsh fpath
    CompleteZsh,
    /// A fish completion script, to install as NAME.fish in the fish completions folder
    CompleteFish,
}

impl Kind {
    /// The kind as `--generate` spells it: `complete-bash`.
    fn name(self) -> String {
        self.to_possible_value().map(|value| value.get_name().to_owned()).unwrap_or_default()
    }
}

/// The exit status of a usage error, as clap uses.
const USAGE_ERROR: u8 = 2;

/// If `args` (the whole command line, program name first) is `PROGRAM --generate KIND` or
/// `PROGRAM --generate=KIND`, prints KIND for `A`'s command and returns the exit status; otherwise `None`, and the
/// program runs as usual.
pub fn requested<A: CommandFactory>(args: &[OsString]) -> Option<ExitCode> {
    let first = args.get(1)?.to_str()?;
    let (kind, extra) = if first == "--generate" {
        (args.get(2).map(|kind| kind.to_string_lossy().into_owned()), args.get(3..).unwrap_or_default())
    } else if let Some(kind) = first.strip_prefix("--generate=") {
        (Some(kind.to_owned()), args.get(2..).unwrap_or_default())
    } else {
        return None;
    };
    let command = command::<A>();
    let program = command.get_name().to_owned();
    let Some(kind) = kind else {
        return Some(usage_error(&program, "--generate needs a KIND"));
    };
    if !extra.is_empty() {
        return Some(usage_error(&program, "--generate KIND takes no other arguments"));
    }
    let Ok(kind) = Kind::from_str(&kind, false) else {
        return Some(usage_error(&program, &format!("unknown --generate kind '{kind}'")));
    };
    let written = render(command, kind).and_then(|text| {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(&text).and_then(|()| stdout.flush())
    });
    Some(match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{program}: error: writing --generate {} to stdout: {err}", kind.name());
            ExitCode::FAILURE
        }
    })
}

/// `A`'s command, with `--generate` added so that the man page documents it and completion offers its kinds
/// (the programs' own parsers never see it: [`requested`] handles it first).
pub fn command<A: CommandFactory>() -> Command {
    A::command().arg(
        Arg::new("generate")
            .long("generate")
            .value_name("KIND")
            .value_parser(EnumValueParser::<Kind>::new())
            .action(ArgAction::Set)
            .exclusive(true)
            .help("Print a man page or a shell completion script to stdout, and exit"),
    )
}

/// The file `kind` asks for, made from `command`. (Only the man page's writer returns errors, none of which a
/// Vec raises; they are passed on rather than unwrapped.)
pub fn render(mut command: Command, kind: Kind) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let shell = match kind {
        Kind::Man => {
            clap_mangen::Man::new(command).render(&mut out)?;
            return Ok(out);
        }
        Kind::CompleteBash => Shell::Bash,
        Kind::CompleteZsh => Shell::Zsh,
        Kind::CompleteFish => Shell::Fish,
    };
    let name = command.get_name().to_owned();
    clap_complete::generate(shell, &mut command, name, &mut out);
    Ok(out)
}

/// The kinds, as `--generate` spells them: `man, complete-bash, ...`.
fn kinds() -> String {
    Kind::value_variants().iter().map(|kind| kind.name()).collect::<Vec<_>>().join(", ")
}

fn usage_error(program: &str, message: &str) -> ExitCode {
    eprintln!("{program}: error: {message}; the kinds are: {}", kinds());
    eprintln!("usage: {program} --generate KIND");
    ExitCode::from(USAGE_ERROR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, clap::Parser)]
    #[command(name = "sample", version)]
    struct Sample {
        /// A required positional, as `peer PORT` has.
        port: u16,
        /// A flag the outputs must mention.
        #[arg(long)]
        verbose: bool,
    }

    fn argv(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn other_command_lines_are_left_to_the_program() {
        for args in
            [&["sample"][..], &["sample", "6881"], &["sample", "6881", "--generate", "man"], &["sample", "--gen"]]
        {
            assert!(requested::<Sample>(&argv(args)).is_none(), "{args:?}");
        }
    }

    #[test]
    fn every_kind_is_rendered_and_spelled_as_documented() {
        assert_eq!(kinds(), "man, complete-bash, complete-zsh, complete-fish");
        for kind in Kind::value_variants() {
            let text = String::from_utf8(render(command::<Sample>(), *kind).expect("rendered")).expect("UTF-8");
            assert!(text.contains("sample"), "{kind:?}:\n{text}");
            assert!(text.contains("verbose") && text.contains("generate"), "{kind:?}:\n{text}");
        }
        let man = String::from_utf8(render(command::<Sample>(), Kind::Man).expect("rendered")).expect("UTF-8");
        assert!(man.contains(".TH sample 1"), "{man}");
    }

    #[test]
    fn bad_requests_are_usage_errors() {
        for args in [
            &["sample", "--generate"][..],
            &["sample", "--generate", "pdf"],
            &["sample", "--generate=pdf"],
            &["sample", "--generate", "man", "6881"],
        ] {
            assert_eq!(requested::<Sample>(&argv(args)), Some(ExitCode::from(USAGE_ERROR)), "{args:?}");
        }
    }
}
