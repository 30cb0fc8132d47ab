//! The Python package (`python/`): builds it with `pip install ./python` into a
//! virtual environment under `target/` (made once, reused), then runs its pytest
//! suite (`python/tests/`, which also runs `examples/python/`). Part of `cargo test`
//! so that one command runs every test; it needs `python3` (3.10 or newer, with
//! `venv`) and PyPI for the first run (maturin, pytest, pandas, matplotlib, mypy).
//!
//! `BRANDSIM_PYTHON` names another interpreter; `BRANDSIM_PYTEST_ARGS` adds pytest
//! arguments (e.g. `-k gil`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// What the test environment installs besides the package (the marker file holds
/// it, so a change reinstalls).
const REQUIREMENTS: &[&str] = &[
    "maturin>=1.9,<2",
    "pytest>=7",
    "pandas>=1.5",
    "matplotlib>=3.5",
    "mypy>=1.5",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The target directory of this build (`CARGO_TARGET_TMPDIR` is `<target>/tmp`).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is inside the target directory")
        .to_path_buf()
}

fn run(what: &str, command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start {command:?}: {e}"));
    if !output.status.success() {
        panic!(
            "{what} failed ({}):\n{command:?}\n--- stdout\n{}\n--- stderr\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    output
}

/// The virtual environment `target/python-venv` with [`REQUIREMENTS`] installed;
/// made on first use and when the requirements change.
fn venv() -> PathBuf {
    let venv = target_dir().join("python-venv");
    let marker = venv.join("brandsim-requirements.txt");
    let wanted = REQUIREMENTS.join("\n");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str()) {
        return venv;
    }
    let python = std::env::var("BRANDSIM_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let version = Command::new(&python)
        .args(["-c", "import sys; print(sys.version_info >= (3, 10))"])
        .output();
    match version {
        Ok(out) if String::from_utf8_lossy(&out.stdout).trim() == "True" => {}
        Ok(_) => panic!(
            "{python} is older than Python 3.10; the brandsim package needs 3.10 or newer (set BRANDSIM_PYTHON to another interpreter)"
        ),
        Err(e) => panic!(
            "cannot run {python} ({e}): the Python package's tests need Python 3.10 or newer with venv; install python3 (Debian: apt-get install python3 python3-venv) or set BRANDSIM_PYTHON"
        ),
    }
    let _ = std::fs::remove_dir_all(&venv);
    run(
        "creating the virtual environment",
        Command::new(&python).args(["-m", "venv"]).arg(&venv),
    );
    run(
        "installing the test requirements from PyPI",
        Command::new(venv.join("bin/python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(REQUIREMENTS),
    );
    std::fs::write(&marker, wanted).expect("write the requirements marker");
    venv
}

/// `venv/bin` first on `PATH` (maturin's build backend runs `maturin` from it).
fn path_with(venv: &Path) -> std::ffi::OsString {
    let mut dirs = vec![venv.join("bin")];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).expect("PATH entries are valid")
}

#[test]
fn python_package_builds_and_passes_its_pytest_suite() {
    let venv = venv();
    let python = venv.join("bin/python");
    // `pip install ./python`, as the README says, without build isolation (maturin is
    // in the environment already) and with this build's target directory, so the
    // dependencies shared with the CLI are compiled once.
    run(
        "pip install ./python",
        Command::new(&python)
            .current_dir(repo())
            .env("PATH", path_with(&venv))
            .env("CARGO_TARGET_DIR", target_dir())
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-build-isolation",
                "--no-deps",
                "--force-reinstall",
                "./python",
            ]),
    );
    let mut pytest = Command::new(&python);
    pytest
        .current_dir(repo())
        .env("PATH", path_with(&venv))
        .env("BRANDSIM_BIN", env!("CARGO_BIN_EXE_brandsim"))
        .args([
            "-m",
            "pytest",
            "python/tests",
            "-q",
            "-p",
            "no:cacheprovider",
        ]);
    if let Ok(extra) = std::env::var("BRANDSIM_PYTEST_ARGS") {
        pytest.args(extra.split_whitespace());
    }
    let output = run("the pytest suite of python/tests", &mut pytest);
    println!("{}", String::from_utf8_lossy(&output.stdout));
}
