//! Every `s2s` command shown in README.md and docs/, run through the real binary against a
//! tiny run trained from tests/fixtures; and what `s2s generate`/`s2s eval` do with awkward
//! inputs (byte-order marks, line breaks inside hypotheses, empty files, flags against the
//! run's defaults).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{fixture, root, s2s, text, tiny_model};

fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// A user error: exit code 1 and one line on stderr equal to `error: {expected}`, no panic.
fn assert_user_error(out: &Output, expected: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr, format!("error: {expected}\n"));
}

/// A tiny model on real pairs (`train`, `valid`, `test` paths), named `name`; `training` and
/// `generation` are the bodies of those sections.
fn tiny_config(name: &str, data: &str, training: &str, generation: &str) -> String {
    format!(
        r#"name = "{name}"
{model}[data]
{data}
max_source_len = 48
max_target_len = 48
[training]
seed = 3
{training}
[generation]
{generation}
"#,
        model = tiny_model(0.0)
    )
}

// ---------------------------------------------------------------------------------------------
// The docs' commands

/// One command line found in a fenced code block.
#[derive(Debug, Clone)]
struct DocCommand {
    /// `file:line`.
    place: String,
    /// Words after `s2s` (quotes removed), e.g. `["generate", "--run", "runs/quickstart"]`.
    args: Vec<String>,
    /// What `echo "…" |` feeds it.
    stdin: Option<String>,
    /// A usage synopsis (`<placeholder>` or `[optional]` parts): only its flags are checked.
    synopsis: bool,
}

/// Splits a shell line into words: whitespace separates, double or single quotes group.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut in_word = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// The `s2s` command of one shell line, if it runs one: `$ ` prompts, `# comments`,
/// `cargo run --release --` and `target/release/s2s` are read as `s2s`, and `echo "…" |` as
/// its input.
fn parse_command(line: &str) -> Option<(Vec<String>, Option<String>)> {
    let line = line.trim().trim_start_matches("$ ");
    let line = match line.find(" #") {
        Some(i) => &line[..i],
        None => line,
    };
    let (stdin, command) = match line.rsplit_once(" | ") {
        Some((left, right)) => {
            let echo = shell_words(left);
            assert_eq!(echo.first().map(String::as_str), Some("echo"), "{line}");
            (Some(echo[1..].join(" ") + "\n"), right.trim())
        }
        None => (None, line),
    };
    let words = shell_words(command);
    let skip = if words.starts_with(&["cargo".into(), "run".into()]) {
        words.iter().position(|w| w == "--")? + 1
    } else if words
        .first()
        .is_some_and(|w| w == "s2s" || w.ends_with("/s2s"))
    {
        1
    } else {
        return None;
    };
    Some((words[skip..].to_vec(), stdin))
}

/// Every `s2s` command in the fenced code blocks of README.md and docs/**/*.md, in order.
fn doc_commands() -> Vec<DocCommand> {
    let mut files = vec![root().join("README.md")];
    let mut dirs = vec![root().join("docs")];
    while let Some(dir) = dirs.pop() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    let mut commands = Vec::new();
    for file in files {
        let name = file.strip_prefix(root()).unwrap().display().to_string();
        let body = std::fs::read_to_string(&file).unwrap();
        commands.extend(fenced_commands(&name, body.lines().enumerate()));
    }
    commands
}

/// The `s2s` commands in the fenced code blocks of `lines` (numbered from 0) of file `name`.
/// A line ending in `\` continues; an indented `[--flag …]` line continues a synopsis.
fn fenced_commands<'a>(
    name: &str,
    lines: impl Iterator<Item = (usize, &'a str)>,
) -> Vec<DocCommand> {
    let mut commands: Vec<DocCommand> = Vec::new();
    let mut fenced = false;
    let mut pending = String::new();
    let mut start = 0;
    for (i, line) in lines {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            continue;
        }
        if pending.is_empty() {
            start = i + 1;
        }
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        let whole = std::mem::take(&mut pending);
        let trimmed = whole.trim_start();
        if trimmed.starts_with('[') && whole.starts_with(' ') {
            if let Some(last) = commands.last_mut().filter(|c| c.synopsis) {
                last.args.extend(shell_words(trimmed));
            }
            continue;
        }
        if let Some((args, stdin)) = parse_command(&whole) {
            let synopsis = args.iter().any(|a| a.contains('<') || a.contains('['));
            commands.push(DocCommand {
                place: format!("{name}:{start}"),
                args,
                stdin,
                synopsis,
            });
        }
    }
    commands
}

/// The long flags a synopsis names: `--run` in `--run <dir>`, `--format` in
/// `[--format text|jsonl]`.
fn synopsis_flags(args: &[String]) -> Vec<&str> {
    args.iter()
        .map(|a| a.trim_start_matches('[').trim_end_matches(']'))
        .filter(|a| a.starts_with("--"))
        .collect()
}

/// Commands not run here, each with its reason; their flags are still checked against
/// `--help`, and the command line, with `--help` appended, must parse.
fn not_run(args: &[String]) -> Option<&'static str> {
    let line = args.join(" ");
    let has = |s: &str| line.contains(s);
    if args[0] == "data" {
        Some("downloads a corpus or a checkpoint (no network in tests)")
    } else if args[0] == "bench" {
        Some("a measurement run of minutes; tests/cli.rs runs `bench` on a tiny config")
    } else if args[0] == "serve" {
        Some("a server that runs until it is stopped; tests/serve.rs starts it and sends requests")
    } else if args[0] == "encode" {
        Some("needs a prepared BERT (minilm-l6) or one at the path shown; tests/cli.rs runs it")
    } else if args[0] == "train" && has("--backend wgpu") {
        Some("trains on wgpu, a cargo feature not in the default test build")
    } else if has("configs/bible-") || has("runs/bible-") {
        Some("an hour-long training run on tch, or a command on one; experiments/bible-systems ran them")
    } else if has("--epoch ") {
        Some("scores an epoch checkpoint the tiny run may not keep; tests/cli.rs runs `eval --epoch`")
    } else if has("summarize-debian") {
        Some("trains on or reads the debian-descriptions corpus; tests/summarize.rs runs the same commands on a tiny summarizer")
    } else {
        None
    }
}

/// `s2s {subcommand} --help`.
fn help(subcommand: &[String], cwd: &Path) -> String {
    let mut args: Vec<&str> = subcommand.iter().map(String::as_str).collect();
    args.push("--help");
    let out = s2s(&args, None, cwd);
    assert_success(&out, &args.join(" "));
    text(&out.stdout)
}

/// The long flags a subcommand's `--help` lists: the first `--word` of each option line
/// (clap indents those by 2 or 6 spaces, their descriptions deeper), so that a flag named
/// inside a description, "(with --run)", is not counted.
fn help_flags(subcommand: &[String], cwd: &Path) -> Vec<String> {
    help(subcommand, cwd)
        .lines()
        .filter(|line| line.starts_with("  -") || line.starts_with("      --"))
        .filter_map(|line| {
            line.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == '=')
                .find(|w| w.starts_with("--"))
                .map(str::to_string)
        })
        .collect()
}

/// The subcommands a (sub)command's `--help` lists under "Commands:", without `help`.
fn help_commands(subcommand: &[String], cwd: &Path) -> Vec<String> {
    help(subcommand, cwd)
        .lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// Every command and sub-command `--help` lists: `["train"]`, …, `["bench", "decode"]`.
fn every_command(cwd: &Path) -> Vec<Vec<String>> {
    let mut commands: Vec<Vec<String>> = Vec::new();
    let mut parents: Vec<Vec<String>> = vec![Vec::new()];
    while let Some(parent) = parents.pop() {
        for name in help_commands(&parent, cwd) {
            let mut command = parent.clone();
            command.push(name);
            commands.push(command.clone());
            parents.push(command);
        }
    }
    commands
}

/// Words naming the subcommand: `["bench", "decode"]`, `["data", "prepare"]`, `["eval"]`.
fn subcommand(args: &[String]) -> Vec<String> {
    let nested = ["bench decode", "data prepare"];
    if args.len() > 1 && nested.contains(&format!("{} {}", args[0], args[1]).as_str()) {
        args[..2].to_vec()
    } else {
        args[..1].to_vec()
    }
}

fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let i = args.iter().position(|a| a == flag)?;
    args.get(i + 1).map(String::as_str)
}

const VERSES: &str = "In the beginning was the Word.\nThe same was in the beginning with God.\n\
                      All things were made through him.\n";

#[test]
fn every_command_in_the_readme_and_the_docs_runs() {
    let commands = doc_commands();
    let count = |sub: &str| {
        commands
            .iter()
            .filter(|c| !c.synopsis && c.args[0] == sub)
            .count()
    };
    // The docs show these; if the extraction breaks, this test must not pass on nothing.
    assert!(count("generate") >= 5, "{commands:#?}");
    assert!(count("eval") >= 3, "{commands:#?}");
    assert!(count("train") >= 2, "{commands:#?}");
    assert!(commands.iter().filter(|c| c.synopsis).count() >= 9);

    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    // `configs/quickstart.toml` is the docs' config: here a tiny one with the same
    // [generation] defaults (beam search of width 4), trained on the fixtures.
    std::fs::create_dir_all(cwd.join("configs")).unwrap();
    let data = format!(
        "train = \"{}\"\nvalid = \"{}\"\ntest = \"{}\"",
        fixture("bible-en-fr-train.tsv").display(),
        fixture("bible-en-fr-valid.tsv").display(),
        fixture("bible-en-fr-valid.tsv").display(),
    );
    std::fs::write(
        cwd.join("configs/quickstart.toml"),
        tiny_config(
            "quickstart",
            &data,
            "epochs = 1\nbatch_size = 16\nwarmup_steps = 10\nsamples = 1\nmetric_pairs = 8\n",
            "num_beams = 4",
        ),
    )
    .unwrap();
    std::fs::write(cwd.join("verses.txt"), VERSES).unwrap();
    let refs = "Au commencement était la Parole.\nElle était au commencement avec Dieu.\n\
                Toutes choses ont été faites par elle.\n";
    std::fs::write(cwd.join("refs.txt"), refs).unwrap();
    std::fs::write(
        cwd.join("hyps.txt"),
        "Au commencement était le Verbe.\nElle était avec Dieu.\nTout a été fait par elle.\n",
    )
    .unwrap();

    // Training first: every other command reads runs/quickstart.
    let mut ordered: Vec<&DocCommand> = commands.iter().filter(|c| !c.synopsis).collect();
    ordered.sort_by_key(|c| c.args[0] != "train");
    let mut ran = Vec::new();
    let mut skipped = Vec::new();
    for command in ordered {
        let args: Vec<&str> = command.args.iter().map(String::as_str).collect();
        let what = format!("{} `s2s {}`", command.place, args.join(" "));
        let flags = help_flags(&subcommand(&command.args), cwd);
        for flag in args.iter().filter(|a| a.starts_with("--")) {
            assert!(flags.iter().any(|f| f == flag), "{what}: no flag {flag}");
        }
        if let Some(reason) = not_run(&command.args) {
            let mut with_help = args.clone();
            with_help.push("--help");
            assert_success(&s2s(&with_help, None, cwd), &what);
            skipped.push(format!("{what}: {reason}"));
            continue;
        }
        let stdin = command
            .stdin
            .clone()
            .or_else(|| (args[0] == "generate").then(|| VERSES.to_string()));
        let out = s2s(&args, stdin.as_deref(), cwd);
        assert_success(&out, &what);
        let stdout = text(&out.stdout);
        match args[0] {
            "train" => {
                assert!(stdout.contains("validation ("), "{what}: {stdout}");
                assert!(cwd.join("runs/quickstart/model.mpk").is_file(), "{what}");
            }
            "generate" => {
                let inputs = match (
                    command.stdin.as_deref(),
                    flag_value(&command.args, "--input"),
                ) {
                    (Some(stdin), _) => stdin.lines().count(),
                    (None, Some(file)) => std::fs::read_to_string(cwd.join(file))
                        .unwrap()
                        .lines()
                        .count(),
                    (None, None) => VERSES.lines().count(),
                };
                let per_input: usize = flag_value(&command.args, "--num-return-sequences")
                    .map_or(1, |n| n.parse().unwrap());
                if flag_value(&command.args, "--format") == Some("jsonl") {
                    let records: Vec<serde_json::Value> = stdout
                        .lines()
                        .map(|l| serde_json::from_str(l).unwrap())
                        .collect();
                    assert_eq!(records.len(), inputs, "{what}");
                    for r in &records {
                        let hyps = r["hypotheses"].as_array().unwrap();
                        assert_eq!(hyps.len(), per_input, "{what}: {r}");
                        assert!(hyps.iter().all(|h| h["score"].as_f64().unwrap() < 0.0));
                    }
                } else {
                    assert_eq!(
                        stdout.lines().count(),
                        inputs * per_input,
                        "{what}: {stdout}"
                    );
                }
                if args.contains(&"--seed") {
                    let again = s2s(&args, stdin.as_deref(), cwd);
                    assert_eq!(text(&again.stdout), stdout, "{what}: the seed reproduces");
                }
            }
            "eval" => {
                let metrics = flag_value(&command.args, "--metrics").unwrap_or("bleu,chrf");
                let lines: Vec<&str> = stdout.lines().collect();
                assert_eq!(lines.len(), metrics.split(',').count(), "{what}: {stdout}");
                for (line, metric) in lines.iter().zip(metrics.split(',')) {
                    let prefix = match metric {
                        "bleu" => "BLEU|",
                        "rouge" => "ROUGE|",
                        _ => "chrF2|",
                    };
                    assert!(line.starts_with(prefix), "{what}: {line}");
                }
                if let Some(output) = flag_value(&command.args, "--output") {
                    let written = std::fs::read_to_string(cwd.join(output)).unwrap();
                    let pairs = flag_value(&command.args, "--max-pairs")
                        .map_or(60, |n| n.parse::<usize>().unwrap().min(60));
                    assert_eq!(written.lines().count(), pairs, "{what}");
                }
            }
            "compare" => {
                let out_dir = flag_value(&command.args, "--out").unwrap();
                assert!(cwd.join(out_dir).join("compare.md").is_file(), "{what}");
            }
            "backends" => assert!(stdout.contains("ndarray"), "{what}: {stdout}"),
            other => panic!("{what}: no check for `s2s {other}`; add one"),
        }
        ran.push(what);
        // A second run for the docs' comparison of two runs (same tiny run, other name).
        if args[0] == "train" && !cwd.join("runs/quickstart-flex").exists() {
            copy_dir(
                &cwd.join("runs/quickstart"),
                &cwd.join("runs/quickstart-flex"),
            );
        }
    }
    assert!(ran.len() >= 10, "ran: {ran:#?}");
    // Shown with --nocapture: what was only parsed, and why.
    eprintln!("ran {} doc commands; parsed only:", ran.len());
    for line in &skipped {
        eprintln!("  {line}");
    }

    // Synopses (`<dir>`, `[--flag …]`): every flag they name exists.
    for command in commands.iter().filter(|c| c.synopsis) {
        let flags = help_flags(&subcommand(&command.args), cwd);
        for flag in synopsis_flags(&command.args) {
            assert!(
                flags.iter().any(|f| f == flag),
                "{}: `s2s {}` shows {flag}, which `--help` does not list",
                command.place,
                command.args.join(" ")
            );
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

#[test]
fn the_doc_extractor_reads_prompts_pipes_and_continuations() {
    let (args, stdin) =
        parse_command("echo \"In the beginning.\" | cargo run --release -- generate --run r")
            .unwrap();
    assert_eq!(args, ["generate", "--run", "r"]);
    assert_eq!(stdin.as_deref(), Some("In the beginning.\n"));
    let (args, _) = parse_command("$ s2s backends        # wgpu ... usable").unwrap();
    assert_eq!(args, ["backends"]);
    let (args, _) = parse_command("target/release/s2s bench --config c.toml").unwrap();
    assert_eq!(args, ["bench", "--config", "c.toml"]);
    assert!(parse_command("scripts/test.sh").is_none());
    assert!(parse_command("runs/<name>/model.mpk   final weights").is_none());
}

/// README.md's command summary (the code block under "## Commands") against `--help`, for
/// every command and sub-command `s2s --help` lists: each long flag a command's `--help` lists
/// is shown on one of the summary's lines for that command, and each flag those lines show is
/// one its `--help` lists. `[generation flags]` stands for the flags of `s2s generate` other
/// than --run, --input, --format, --backend and --attention-out, as the README says.
#[test]
fn the_readme_command_summary_shows_every_flag_of_help_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = readme
        .lines()
        .enumerate()
        .skip_while(|(_, line)| *line != "## Commands")
        .skip(1)
        .take_while(|(_, line)| !line.starts_with("## "));
    let summary = fenced_commands("README.md", section);
    assert!(
        !summary.is_empty(),
        "README.md has no `s2s` line in a code block under \"## Commands\""
    );

    let commands = every_command(cwd);
    assert!(commands.len() >= 9, "{commands:?}");
    let listed = |command: &[String]| -> Vec<String> {
        help_flags(command, cwd)
            .into_iter()
            .filter(|f| f != "--help" && f != "--version")
            .collect()
    };
    let generation: Vec<String> = listed(&["generate".to_string()])
        .into_iter()
        .filter(|f| {
            ![
                "--run",
                "--input",
                "--format",
                "--backend",
                "--attention-out",
            ]
            .contains(&f.as_str())
        })
        .collect();
    // A summary line belongs to the longest command its words start with (`bench decode …` to
    // `bench decode`, not `bench`).
    let owner = |line: &DocCommand| {
        commands
            .iter()
            .filter(|c| line.args.starts_with(c))
            .max_by_key(|c| c.len())
    };

    let mut problems = Vec::new();
    for line in summary.iter().filter(|line| owner(line).is_none()) {
        problems.push(format!(
            "{}: `s2s {}` is no command `s2s --help` lists",
            line.place,
            line.args.join(" ")
        ));
    }
    for command in &commands {
        let name = command.join(" ");
        let listed = listed(command);
        let lines: Vec<&DocCommand> = summary
            .iter()
            .filter(|line| owner(line) == Some(command))
            .collect();
        if lines.is_empty() {
            // `s2s data` only groups `data prepare`: nothing to show.
            if !listed.is_empty() || help_commands(command, cwd).is_empty() {
                problems.push(format!("`s2s {name}` has no line in the summary"));
            }
            continue;
        }
        // (flag, where the summary shows it)
        let mut shown: Vec<(String, String)> = Vec::new();
        for line in &lines {
            for flag in synopsis_flags(&line.args) {
                shown.push((flag.to_string(), line.place.clone()));
            }
            if line.args.join(" ").contains("[generation flags]") {
                for flag in &generation {
                    let place = format!("{} (in [generation flags])", line.place);
                    shown.push((flag.clone(), place));
                }
            }
        }
        for flag in &listed {
            if !shown.iter().any(|(f, _)| f == flag) {
                let places: Vec<&str> = lines.iter().map(|l| l.place.as_str()).collect();
                problems.push(format!(
                    "`s2s {name} --help` lists {flag}; no summary line of `s2s {name}` ({}) \
                     shows it",
                    places.join(", ")
                ));
            }
        }
        for (flag, place) in &shown {
            if !listed.contains(flag) {
                problems.push(format!(
                    "{place}: the summary shows `s2s {name} {flag}`; `s2s {name} --help` does \
                     not list it"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "README.md's command summary (## Commands) has drifted from --help:\n  {}",
        problems.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------
// Awkward inputs

/// Eight pairs whose targets hold every kind of line break (JSONL can carry `\n`), for a model
/// that memorises them.
const BROKEN_TARGETS: [&str; 8] = [
    "Alors Dieu parla à Noé,\nen disant:",
    "les Héviens,\r\nles Arkiens, les Siniens,",
    "Hadoram,\u{2028}Uzal, Dikla,",
    "Obal,\u{0B}Abimaël, Séba,",
    "Ophir,\u{0C}Havila et Jobab.",
    "Tous ceux-là\u{85}furent fils de Joktan.",
    "Ils habitèrent\u{2029}\u{2029}depuis Méscha,",
    "du côté de Sephar,\r\rjusqu'à la montagne de l'orient.",
];

#[test]
fn line_breaks_in_hypotheses_keep_one_line_per_input_and_byte_order_marks_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let tsv = std::fs::read_to_string(fixture("bible-en-fr-eight.tsv")).unwrap();
    let sources: Vec<&str> = tsv.lines().map(|l| l.split_once('\t').unwrap().0).collect();
    // Every input file starts with a byte-order mark: the config, the JSONL pairs, the generate
    // input (a BOM made JSONL line 1 "not a valid JSON object").
    let mut jsonl = String::from("\u{feff}");
    for (source, target) in sources.iter().zip(BROKEN_TARGETS) {
        let pair = serde_json::json!({ "source": source, "target": target });
        jsonl.push_str(&format!("{pair}\n"));
    }
    let pairs = cwd.join("breaks.jsonl");
    std::fs::write(&pairs, jsonl).unwrap();
    let data = format!(
        "train = \"{}\"\nvalid = \"{}\"",
        pairs.display(),
        pairs.display()
    );
    let training = "epochs = 120\nbatch_size = 8\nlr_factor = 1.0\nwarmup_steps = 30\n\
                    label_smoothing = 0.0\nkeep_checkpoints = 1\nsamples = 0\n";
    let config = cwd.join("breaks.toml");
    std::fs::write(
        &config,
        format!(
            "\u{feff}{}",
            tiny_config("breaks", &data, training, "num_beams = 2")
        ),
    )
    .unwrap();
    assert_success(&s2s(&["train", "breaks.toml"], None, cwd), "train");

    let input = cwd.join("input.txt");
    std::fs::write(&input, format!("\u{feff}{}\n", sources.join("\n"))).unwrap();
    let generate = |extra: &[&str]| {
        let mut args = vec!["generate", "--run", "runs/breaks", "--input", "input.txt"];
        args.extend_from_slice(extra);
        let out = s2s(&args, None, cwd);
        assert_success(&out, &args.join(" "));
        text(&out.stdout)
    };
    // JSON lines keep the exact text: the model learnt the breaks, and the BOM did not reach
    // the first source.
    let records: Vec<serde_json::Value> = generate(&["--format", "jsonl"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 8);
    for (record, (source, target)) in records.iter().zip(sources.iter().zip(BROKEN_TARGETS)) {
        assert_eq!(record["source"].as_str(), Some(*source));
        assert_eq!(record["hypotheses"][0]["text"].as_str(), Some(target));
    }
    // Text output: one line per input, each run of breaks one space.
    let expected: Vec<String> = BROKEN_TARGETS
        .iter()
        .map(|t| {
            t.split(|c: char| "\n\r\u{0B}\u{0C}\u{85}\u{2028}\u{2029}".contains(c))
                .filter(|part| !part.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    assert_eq!(expected[1], "les Héviens, les Arkiens, les Siniens,");
    let printed = generate(&[]);
    assert_eq!(
        printed.split('\n').collect::<Vec<_>>().len(),
        9,
        "{printed:?}"
    );
    assert_eq!(printed.lines().collect::<Vec<_>>(), expected);
    // stdin with a BOM, and n-best output: 2 lines per input, still none broken.
    let out = s2s(
        &[
            "generate",
            "--run",
            "runs/breaks",
            "--num-return-sequences",
            "2",
        ],
        Some(&format!("\u{feff}{}\n", sources.join("\n"))),
        cwd,
    );
    assert_success(&out, "generate from stdin");
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 16);
    let best: Vec<&String> = lines.iter().step_by(2).collect();
    assert_eq!(best, expected.iter().collect::<Vec<_>>());
    assert!(
        !text(&out.stdout).contains(|c: char| "\r\u{0B}\u{0C}\u{85}\u{2028}\u{2029}".contains(c))
    );

    // `eval --run --output` writes one line per pair too.
    let out = s2s(
        &[
            "eval",
            "--run",
            "runs/breaks",
            "--split",
            "valid",
            "--output",
            "valid.hyp",
        ],
        None,
        cwd,
    );
    assert_success(&out, "eval --run");
    let written = std::fs::read_to_string(cwd.join("valid.hyp")).unwrap();
    assert_eq!(written.lines().collect::<Vec<_>>(), expected);
    assert_eq!(written.split('\n').count(), 9);
}

#[test]
fn eval_ignores_byte_order_marks_and_refuses_inputs_without_text() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let fixtures = root().join("crates/s2s-eval/tests/fixtures");
    let hyp = std::fs::read_to_string(fixtures.join("bible-mild.hyp.fr")).unwrap();
    let reference = std::fs::read_to_string(fixtures.join("bible.ref.fr")).unwrap();
    std::fs::write(cwd.join("hyp.txt"), format!("\u{feff}{hyp}")).unwrap();
    std::fs::write(cwd.join("ref.txt"), format!("\u{feff}{reference}")).unwrap();
    // sacrebleu 2.6.0's numbers for these files without the marks (as in tests/cli.rs)
    let out = s2s(&["eval", "--hyp", "hyp.txt", "--ref", "ref.txt"], None, cwd);
    assert_success(&out, "eval with BOMs");
    assert_eq!(
        text(&out.stdout),
        "BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0 = 86.11 98.2/90.0/85.1/80.6 (BP = 0.976 ratio = 0.976 hyp_len = 857 ref_len = 878)\n\
         chrF2|nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0 = 91.40\n"
    );

    std::fs::write(cwd.join("empty.txt"), "").unwrap();
    std::fs::write(cwd.join("blank.txt"), "\u{feff}\n  \n\t\n").unwrap();
    std::fs::write(cwd.join("one-blank.txt"), "\n").unwrap();
    std::fs::write(cwd.join("three.txt"), "a\nb\nc\n").unwrap();
    for (hyp, reference, expected) in [
        (
            "empty.txt",
            "empty.txt",
            "the hypothesis file empty.txt has no text (it is empty); a score over no segments \
             is undefined",
        ),
        (
            "blank.txt",
            "three.txt",
            "the hypothesis file blank.txt has no text (all 3 lines are blank); a score over no \
             segments is undefined",
        ),
        (
            "three.txt",
            "one-blank.txt",
            "the reference file one-blank.txt has no text (its one line is blank); a score over \
             no segments is undefined",
        ),
    ] {
        let out = s2s(&["eval", "--hyp", hyp, "--ref", reference], None, cwd);
        assert_user_error(&out, expected);
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn generation_flags_win_over_the_runs_defaults_and_conflicts_name_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let data = format!(
        "train = \"{}\"\nvalid = \"{}\"",
        fixture("bible-en-fr-eight.tsv").display(),
        fixture("bible-en-fr-eight.tsv").display()
    );
    std::fs::write(
        cwd.join("beam.toml"),
        tiny_config(
            "beam",
            &data,
            "epochs = 1\nbatch_size = 8\nwarmup_steps = 10\nsamples = 0\n",
            "num_beams = 4\nlength_penalty = 0.6\nnum_return_sequences = 2",
        ),
    )
    .unwrap();
    assert_success(&s2s(&["train", "beam.toml"], None, cwd), "train");
    let generate = |flags: &[&str]| {
        let mut args = vec!["generate", "--run", "runs/beam"];
        args.extend_from_slice(flags);
        s2s(&args, Some(VERSES), cwd)
    };
    // The run: beam 4, 2 hypotheses per input. `--do-sample` samples (it was refused:
    // "invalid experiment config: generation: do_sample cannot be combined with num_beams > 1").
    let out = generate(&[
        "--do-sample",
        "--top-p",
        "0.9",
        "--temperature",
        "0.8",
        "--seed",
        "7",
    ]);
    assert_success(&out, "--do-sample over a beam run");
    assert_eq!(
        text(&out.stdout).lines().count(),
        6,
        "the run's 2 per input"
    );
    assert_eq!(
        text(&generate(&["--num-beams", "1", "--num-return-sequences", "1"]).stdout)
            .lines()
            .count(),
        3
    );
    for (flags, expected) in [
        (
            &["--do-sample", "--num-beams", "4"][..],
            "--do-sample cannot be combined with --num-beams 4 (beam sampling is not \
             supported); pass --num-beams 1 to sample, or drop --do-sample for beam search",
        ),
        (
            &["--temperature", "0.5"],
            "--temperature only applies with sampling; add --do-sample --num-beams 1",
        ),
        (
            &["--num-beams", "1"],
            "num_return_sequences (2) cannot exceed num_beams (1) without do_sample (the \
             flags applied to the run's [generation] defaults in runs/beam/config.toml); set \
             --num-beams or --num-return-sequences or --do-sample on the command line",
        ),
    ] {
        assert_user_error(&generate(flags), expected);
    }
}
