//! `newsdesk subscribers ...` and `newsdesk unsubscribe`, run as the real binary on a
//! site in a temporary folder, with the database read back through SQLite.

use std::path::{Path, PathBuf};
use std::process::Command;

const CONFIG: &str = r#"[site]
title = "LWKD"
base_url = "https://lwkd.info"

[subscribers]
database = "state/list.db"
unsubscribe_url = "https://lwkd.example.org/unsubscribe/{token}"
"#;

struct Site {
    dir: tempfile::TempDir,
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn expect(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "exit code\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), CONFIG).unwrap();
        std::fs::create_dir(dir.path().join("posts")).unwrap();
        Site { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn run(&self, args: &[&str]) -> Run {
        let out =
            Command::new(env!("CARGO_BIN_EXE_newsdesk")).current_dir(self.dir.path()).args(args).output().unwrap();
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.path("state/list.db")).unwrap()
    }

    /// `(email, name, status)` of every row, in id order.
    fn rows(&self) -> Vec<(String, Option<String>, String)> {
        let db = self.db();
        let mut stmt = db.prepare("SELECT email, name, status FROM subscribers ORDER BY id").unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect()
    }

    fn token(&self, email: &str) -> String {
        self.db().query_row("SELECT token FROM subscribers WHERE email = ?1", [email], |r| r.get(0)).unwrap()
    }
}

fn row(e: &str, n: Option<&str>, s: &str) -> (String, Option<String>, String) {
    (e.to_string(), n.map(str::to_string), s.to_string())
}

#[test]
fn import_reports_each_bad_row_with_its_line_and_imports_the_rest() {
    let site = Site::new();
    site.write(
        "list.csv",
        "email,name\n\
         ada@example.org,Ada Lovelace\n\
         grace@EXAMPLE.org ,Grace Hopper\n\
         not an address,Bob\n\
         \n\
         \"Linus <linus@example.net>\",\n\
         ,Nameless\n\
         barbara@example,Barbara\n\
         \"ken@example.com\",\"Thompson, Ken\"\n",
    );
    let run = site.run(&["subscribers", "import", "list.csv"]);
    run.expect(1);
    // Compiler-style positions: file:line, for each rejected row only.
    assert!(run.stderr.contains("list.csv:4: error: `not an address` is not a valid email address"), "{}", run.stderr);
    assert!(run.stderr.contains("list.csv:7: error: this row has no email address"), "{}", run.stderr);
    assert!(run.stderr.contains("list.csv:8: error: `barbara@example` is not a valid email address"), "{}", run.stderr);
    assert_eq!(run.stderr.matches(": error:").count(), 3, "{}", run.stderr);
    assert!(run.stderr.contains("4 added"), "{}", run.stderr);
    assert!(run.stderr.contains("3 rows were rejected"), "{}", run.stderr);
    assert_eq!(
        site.rows(),
        [
            row("ada@example.org", Some("Ada Lovelace"), "active"),
            row("grace@example.org", Some("Grace Hopper"), "active"),
            row("linus@example.net", Some("Linus"), "active"),
            row("ken@example.com", Some("Thompson, Ken"), "active"),
        ]
    );
    // Every subscriber has a distinct secret token.
    let tokens: std::collections::HashSet<String> =
        ["ada@example.org", "grace@example.org", "linus@example.net", "ken@example.com"]
            .iter()
            .map(|e| site.token(e))
            .collect();
    assert_eq!(tokens.len(), 4);
    assert!(tokens.iter().all(|t| t.len() == 32));
}

#[test]
fn reimport_is_idempotent_and_never_resubscribes() {
    let site = Site::new();
    site.write("list.csv", "ada@example.org,Ada\ngrace@example.org,Grace\n");
    site.run(&["subscribers", "import", "list.csv"]).expect(0);
    let ada_token = site.token("ada@example.org");
    let before = site.rows();

    let again = site.run(&["subscribers", "import", "list.csv", "--format", "json"]);
    again.expect(0);
    let json: serde_json::Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(json["added"], 0);
    assert_eq!(json["unchanged"], 2);
    assert_eq!(site.rows(), before);
    assert_eq!(site.token("ada@example.org"), ada_token, "a re-import must not change tokens");

    // Unsubscribe by token (what the link carries), then by address (the editor).
    let r = site.run(&["unsubscribe", &ada_token]);
    r.expect(0);
    assert!(r.stderr.contains("unsubscribed ada@example.org"), "{}", r.stderr);
    site.run(&["unsubscribe", "--email", "Grace@Example.org"]).expect(0);
    let r = site.run(&["unsubscribe", "--email", "grace@example.org"]);
    r.expect(0);
    assert!(r.stderr.contains("already unsubscribed"), "{}", r.stderr);

    // The same old list imported again: they stay unsubscribed, and are still there.
    let r = site.run(&["subscribers", "import", "list.csv"]);
    r.expect(0);
    assert!(r.stderr.contains("2 kept unsubscribed"), "{}", r.stderr);
    assert_eq!(
        site.rows(),
        [row("ada@example.org", Some("Ada"), "unsubscribed"), row("grace@example.org", Some("Grace"), "unsubscribed")]
    );
    // `add` refuses too, unless told they consented.
    let r = site.run(&["subscribers", "add", "ada@example.org"]);
    r.expect(1);
    assert!(r.stderr.contains("--resubscribe"), "{}", r.stderr);
    site.run(&["subscribers", "add", "ada@example.org", "--resubscribe"]).expect(0);
    assert_eq!(site.rows()[0].2, "active");

    let r = site.run(&["unsubscribe", "0123456789abcdef0123456789abcdef"]);
    r.expect(1);
    assert!(r.stderr.contains("no subscriber has this unsubscribe token"), "{}", r.stderr);
}

#[test]
fn export_round_trips_through_import_including_unsubscribes() {
    let site = Site::new();
    site.write("list.csv", "email,name\nada@example.org,\"Lovelace, Ada\"\ngrace@example.org,\nken@example.com,Ken\n");
    site.run(&["subscribers", "import", "list.csv"]).expect(0);
    site.run(&["unsubscribe", "--email", "ken@example.com"]).expect(0);

    let active = site.run(&["subscribers", "export"]);
    active.expect(0);
    assert_eq!(active.stdout.lines().count(), 3, "header + 2 active:\n{}", active.stdout);
    assert!(!active.stdout.contains(&site.token("ada@example.org")), "tokens are secrets");

    site.run(&["subscribers", "export", "--all", "-o", "all.csv"]).expect(0);
    let other = Site::new();
    std::fs::copy(site.path("all.csv"), other.path("all.csv")).unwrap();
    other.run(&["subscribers", "import", "all.csv"]).expect(0);
    assert_eq!(other.rows(), site.rows());

    let list = site.run(&["subscribers", "list", "--format", "json"]);
    list.expect(0);
    let json: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    let emails: Vec<&str> = json.as_array().unwrap().iter().map(|s| s["email"].as_str().unwrap()).collect();
    assert_eq!(emails, ["ada@example.org", "grace@example.org"]);
    assert!(json[0].get("token").is_none());
}

#[test]
fn add_validates_and_remove_erases() {
    let site = Site::new();
    let r = site.run(&["subscribers", "add", "ada@@example.org"]);
    r.expect(1);
    assert!(r.stderr.contains("is not a valid email address"), "{}", r.stderr);
    site.run(&["subscribers", "add", " Ada@Example.ORG", "--name", "Ada"]).expect(0);
    let r = site.run(&["subscribers", "add", "ada@example.org"]);
    r.expect(0);
    assert!(r.stderr.contains("already subscribed"), "{}", r.stderr);
    assert_eq!(site.rows(), [row("Ada@example.org", Some("Ada"), "active")]);
    site.run(&["subscribers", "remove", "ada@example.org"]).expect(0);
    assert!(site.rows().is_empty());
    site.run(&["subscribers", "remove", "ada@example.org"]).expect(1);
}

#[test]
fn a_missing_database_is_named_and_not_created_by_reading_commands() {
    let site = Site::new();
    for args in [&["subscribers", "list"][..], &["subscribers", "export"], &["unsubscribe", "--email", "x@example.org"]]
    {
        let r = site.run(args);
        r.expect(1);
        assert!(r.stderr.contains("no subscriber database at"), "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("state/list.db"), "{}", r.stderr);
    }
    assert!(!site.path("state/list.db").exists());
}

#[test]
fn a_corrupt_database_is_a_clear_error_and_is_left_untouched() {
    let site = Site::new();
    std::fs::create_dir(site.path("state")).unwrap();
    let garbage = b"PK\x03\x04 this is a zip file, not a database, and it is long enough".repeat(40);
    std::fs::write(site.path("state/list.db"), &garbage).unwrap();
    site.write("list.csv", "ada@example.org\n");
    for args in [&["subscribers", "list"][..], &["subscribers", "import", "list.csv"]] {
        let r = site.run(args);
        r.expect(1);
        assert!(r.stderr.contains("is not a newsdesk database"), "{}", r.stderr);
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    }
    assert_eq!(std::fs::read(site.path("state/list.db")).unwrap(), garbage);
}

#[test]
fn bad_bytes_and_broken_quotes_are_reported_per_row() {
    let site = Site::new();
    let mut bytes = b"ada@example.org,Ada\n".to_vec();
    bytes.extend_from_slice(b"bob@example.org,B\xffb\n");
    bytes.extend_from_slice(b"carol@example.org,Carol,active\n");
    bytes.extend_from_slice(b"dan@example.org,Dan,maybe\n");
    std::fs::write(site.path("list.csv"), &bytes).unwrap();
    let r = site.run(&["subscribers", "import", "list.csv"]);
    r.expect(1);
    assert!(r.stderr.contains("list.csv:2: error: this row is not valid UTF-8"), "{}", r.stderr);
    assert!(r.stderr.contains("list.csv:4: error: unknown status `maybe`"), "{}", r.stderr);
    let emails: Vec<String> = site.rows().into_iter().map(|r| r.0).collect();
    assert_eq!(emails, ["ada@example.org", "carol@example.org"]);
    assert!(Path::new(&site.path("state/list.db")).exists());
}

// ---------------------------------------------------------------------------------------
// Database errors: the database named, and what to do

/// Whether the tests run as root, who may write any file whatever its mode.
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

impl Site {
    /// Runs newsdesk as a user who can read the site but not write the database: as
    /// `nobody` when the tests run as root, else as the current user after taking the
    /// write bits away.
    fn run_without_write_access(&self, args: &[&str]) -> Run {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        let mode = |p: PathBuf, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
        mode(self.dir.path().to_path_buf(), 0o755);
        mode(self.path("config.toml"), 0o644);
        mode(self.path("state"), 0o555);
        mode(self.path("state/list.db"), 0o444);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_newsdesk"));
        cmd.current_dir(self.dir.path()).args(args);
        if running_as_root() {
            cmd.uid(65534).gid(65534);
        }
        let out = cmd.output().unwrap();
        mode(self.path("state"), 0o700);
        mode(self.path("state/list.db"), 0o600);
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

#[test]
fn a_database_newsdesk_cannot_write_is_named_with_what_to_do() {
    let site = Site::new();
    site.write("list.csv", "ada@example.org,Ada\n");
    site.run(&["subscribers", "import", "list.csv"]).expect(0);
    for args in [&["subscribers", "add", "grace@example.org"][..], &["subscribers", "import", "list.csv"]] {
        let r = site.run_without_write_access(args);
        r.expect(1);
        let e = &r.stderr;
        assert!(e.starts_with("state/list.db: error: "), "{args:?}: {e}");
        assert!(e.contains("cannot write to the database") || e.contains("cannot open the database"), "{e}");
        assert!(e.contains("= help: check the permissions of the file and of its folder"), "{e}");
        assert!(e.contains("list.db-wal"), "{e}");
    }
    assert_eq!(site.rows(), [row("ada@example.org", Some("Ada"), "active")]);
}

#[test]
fn a_locked_database_is_named_with_what_to_do() {
    let site = Site::new();
    site.write("list.csv", "ada@example.org,Ada\n");
    site.run(&["subscribers", "import", "list.csv"]).expect(0);
    // Another program holds the write lock for longer than newsdesk waits (5 s).
    let other = site.db();
    other.execute_batch("BEGIN IMMEDIATE; UPDATE subscribers SET name = 'Lovelace';").unwrap();
    let r = site.run(&["subscribers", "add", "grace@example.org"]);
    r.expect(1);
    let e = &r.stderr;
    assert!(
        e.starts_with(
            "state/list.db: error: the database is locked: another newsdesk (or another program) is using it"
        ),
        "{e}"
    );
    assert!(e.contains("= help: wait for the other command to finish"), "{e}");
    other.execute_batch("ROLLBACK").unwrap();
    site.run(&["subscribers", "add", "grace@example.org"]).expect(0);
}

#[test]
fn a_folder_where_the_database_should_be_is_named_with_what_to_do() {
    let site = Site::new();
    std::fs::create_dir_all(site.path("state/list.db")).unwrap();
    site.write("list.csv", "ada@example.org,Ada\n");
    for args in [
        &["subscribers", "import", "list.csv"][..],
        &["subscribers", "list"],
        &["subscribers", "add", "ada@example.org"],
        &["unsubscribe", "0123456789abcdef0123456789abcdef"],
        &["status"],
    ] {
        let r = site.run(args);
        r.expect(1);
        let e = &r.stderr;
        assert!(e.contains("state/list.db"), "{args:?}: {e}");
        assert!(e.contains("is a folder, not a database file"), "{args:?}: {e}");
        assert!(e.contains("help: set `[subscribers] database` in config.toml to a file path"), "{args:?}: {e}");
    }
}

// ---------------------------------------------------------------------------------------
// `newsdesk unsubscribe`: a reader's token, or the editor's `--email`

#[test]
fn a_bare_unsubscribe_argument_is_a_token_only() {
    let site = Site::new();
    site.write("list.csv", "ada@example.org,Ada\ngrace@example.org,Grace\n");
    site.run(&["subscribers", "import", "list.csv"]).expect(0);
    let active = || site.rows().into_iter().filter(|r| r.2 == "active").count();

    // What a web page would pass on from a URL: an address is refused, whatever the
    // spelling, and nobody is unsubscribed.
    for attempt in ["ada@example.org", " Ada@Example.org", "<ada@example.org>", "ada%40example.org@x"] {
        let r = site.run(&["unsubscribe", "--", attempt]);
        r.expect(1);
        assert!(r.stderr.contains("looks like an email address, not an unsubscribe token"), "{attempt}: {}", r.stderr);
        assert!(
            r.stderr.contains("= help: to unsubscribe someone by address, run `newsdesk unsubscribe --email"),
            "{}",
            r.stderr
        );
    }
    // Not a token either (tokens are 32 hexadecimal digits); the text is not echoed.
    for attempt in ["1 OR 1=1", "%", "--email=ada@example.org", "0123456789abcdef"] {
        let r = site.run(&["unsubscribe", "--", attempt]);
        r.expect(1);
        assert!(!r.stderr.contains(attempt), "{attempt}: {}", r.stderr);
    }
    assert_eq!(active(), 2, "no attempt may unsubscribe anyone");

    // A token that matches nobody: refused without echoing it.
    let unknown = "0123456789abcdef0123456789abcdef";
    let r = site.run(&["unsubscribe", unknown]);
    r.expect(1);
    assert!(r.stderr.contains("no subscriber has this unsubscribe token"), "{}", r.stderr);
    assert!(!r.stderr.contains(unknown), "{}", r.stderr);

    // The token of the link works, and so does the editor's --email.
    let r = site.run(&["unsubscribe", &site.token("ada@example.org")]);
    r.expect(0);
    assert!(r.stderr.contains("unsubscribed ada@example.org"), "{}", r.stderr);
    let r = site.run(&["unsubscribe", "--email", "Grace@Example.org"]);
    r.expect(0);
    assert!(r.stderr.contains("unsubscribed grace@example.org"), "{}", r.stderr);
    assert_eq!(active(), 0);
    // Both together is a usage error.
    site.run(&["unsubscribe", unknown, "--email", "ada@example.org"]).expect(2);
}

// ---------------------------------------------------------------------------------------
// CSV import: line numbers, separators, repeated rows

#[test]
fn crlf_files_report_the_right_lines() {
    let site = Site::new();
    site.write("list.csv", "email,name\r\nok@example.org,A\r\nbad,B\r\n\r\n\"multi\r\nline\",C\r\nworse,D\r\n");
    let r = site.run(&["subscribers", "import", "list.csv"]);
    r.expect(1);
    assert!(r.stderr.contains("list.csv:3: error: `bad` is not a valid email address"), "{}", r.stderr);
    assert!(
        r.stderr.contains("list.csv:5: error: `multi\r\nline` is not a valid email address")
            || r.stderr.contains("list.csv:5: error:"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("list.csv:7: error: `worse` is not a valid email address"), "{}", r.stderr);
    // Old Mac line ends (CR only) count as lines too.
    site.write("mac.csv", "email,name\rok2@example.org,A\rbad,B\r");
    let r = site.run(&["subscribers", "import", "mac.csv"]);
    r.expect(1);
    assert!(r.stderr.contains("mac.csv:3: error: `bad` is not a valid email address"), "{}", r.stderr);
    let emails: Vec<String> = site.rows().into_iter().map(|r| r.0).collect();
    assert_eq!(emails, ["ok@example.org", "ok2@example.org"]);
}

#[test]
fn semicolon_and_tab_separated_files_are_read_as_such() {
    let site = Site::new();
    site.write("semi.csv", "email;name\nada@example.org;Lovelace, Ada\ngrace@example.org;Grace\n");
    let r = site.run(&["subscribers", "import", "semi.csv"]);
    r.expect(0);
    assert!(r.stderr.contains("imported semi.csv (separated by `;`): 2 added"), "{}", r.stderr);
    site.write("tab.tsv", "ken@example.com\tKen\nlinus@example.net\tLinus\n");
    let r = site.run(&["subscribers", "import", "tab.tsv", "--format", "json"]);
    r.expect(0);
    let json: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!((json["added"].as_u64(), json["delimiter"].as_str()), (Some(2), Some("\t")), "{json}");
    assert_eq!(
        site.rows(),
        [
            row("ada@example.org", Some("Lovelace, Ada"), "active"),
            row("grace@example.org", Some("Grace"), "active"),
            row("ken@example.com", Some("Ken"), "active"),
            row("linus@example.net", Some("Linus"), "active"),
        ]
    );
}

#[test]
fn a_file_whose_rows_are_all_rejected_says_nothing_was_imported() {
    let site = Site::new();
    site.write("list.csv", "email,name\nnope,A\nnever;B\n");
    let r = site.run(&["subscribers", "import", "list.csv"]);
    r.expect(1);
    assert!(!r.stderr.contains("the other rows were imported"), "{}", r.stderr);
    assert!(r.stderr.contains("2 rows were rejected (listed above) and nothing was imported"), "{}", r.stderr);
    // The row with a `;` in its address gets a hint about the separator.
    assert!(r.stderr.contains("list.csv:3: error: `never;B`"), "{}", r.stderr);
    assert!(r.stderr.contains("separated by `;`"), "{}", r.stderr);
    assert!(site.rows().is_empty());
}

#[test]
fn a_row_repeated_in_one_file_is_reported_with_both_lines() {
    let site = Site::new();
    site.write(
        "list.csv",
        "email,name\nada@example.org,Ada\nbob@example.org,Bob\nADA@example.org,Ada Lovelace\nbob@example.org,Bob\n",
    );
    let r = site.run(&["subscribers", "import", "list.csv"]);
    r.expect(1);
    let e = &r.stderr;
    // A different name for the same address: which is right is the editor's call.
    assert!(e.contains("list.csv:4: error: `ADA@example.org` is already on line 2"), "{e}");
    // The very same row again: harmless, but said.
    assert!(e.contains("list.csv:5: warning: `bob@example.org` is already on line 3"), "{e}");
    assert!(e.contains("2 added"), "{e}");
    assert!(e.contains("1 repeated row skipped"), "{e}");
    // The first one was imported, not silently renamed by the second.
    assert_eq!(
        site.rows(),
        [row("ada@example.org", Some("Ada"), "active"), row("bob@example.org", Some("Bob"), "active")]
    );

    let json = site.run(&["subscribers", "import", "list.csv", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(json["rows"], 4);
    assert_eq!(json["unchanged"], 2);
    assert_eq!(json["duplicates"], 1);
    assert_eq!(json["errors"], 1);
    assert_eq!(json["warnings"], 1);
}

#[test]
fn an_internationalised_domain_is_one_subscriber_whatever_its_spelling() {
    let site = Site::new();
    let r = site.run(&["subscribers", "add", "\"Doe, Jane\" <jane@BÜCHER.de>"]);
    r.expect(0);
    assert!(r.stderr.contains("added jane@xn--bcher-kva.de"), "{}", r.stderr);
    let r = site.run(&["subscribers", "add", "jane@xn--bcher-kva.de"]);
    r.expect(0);
    assert!(r.stderr.contains("already subscribed"), "{}", r.stderr);
    site.write(
        "list.csv",
        "email,name\njane@bücher.de,\"Doe, Jane\"\n\"\"\"Smith, Bob\"\" <bob@Bücher.de>\",\njoe@xn--zz.de,Joe\n",
    );
    let r = site.run(&["subscribers", "import", "list.csv"]);
    r.expect(1);
    assert!(r.stderr.contains("list.csv:4: error: `joe@xn--zz.de` is not a valid email address: "), "{}", r.stderr);
    assert!(r.stderr.contains("`xn--zz.de`"), "{}", r.stderr);
    assert_eq!(
        site.rows(),
        [
            row("jane@xn--bcher-kva.de", Some("Doe, Jane"), "active"),
            row("bob@xn--bcher-kva.de", Some("Smith, Bob"), "active"),
        ]
    );
    let r = site.run(&["unsubscribe", "--email", "Jane@BÜCHER.DE"]);
    r.expect(0);
    assert!(r.stderr.contains("unsubscribed jane@xn--bcher-kva.de"), "{}", r.stderr);
    assert_eq!(site.rows()[0].2, "unsubscribed");
}
