//! The templates built into the binary: published to the object store at first start (see
//! `crate::templates`), after which they are templates like any other.

use cove_backend::SeedFile;

/// A built-in template, as compiled in.
#[derive(Debug, Clone)]
pub(crate) struct Builtin {
    pub name: &'static str,
    pub description: &'static str,
    pub icon: &'static str,
    /// What the Processes panel offers to run.
    pub run_command: Option<&'static str>,
    /// The port the run command serves, for the preview.
    pub preview_port: Option<u16>,
    pub files: &'static [(&'static str, &'static str)],
}

macro_rules! file {
    ($template:literal, $path:literal) => {
        (
            $path,
            include_str!(concat!("../../templates/", $template, "/", $path)),
        )
    };
}

/// Every built-in template; `blank` is the default.
pub(crate) static BUILTIN: &[Builtin] = &[
    Builtin {
        name: "blank",
        icon: "📄",
        description: "An empty workspace with a shell.",
        run_command: None,
        preview_port: None,
        files: &[file!("blank", "README.md")],
    },
    Builtin {
        name: "python",
        icon: "🐍",
        description: "Python 3: a main.py to run and edit.",
        run_command: Some("python3 main.py"),
        preview_port: Some(8000),
        files: &[
            file!("python", "main.py"),
            file!("python", "README.md"),
            file!("python", "requirements.txt"),
        ],
    },
    Builtin {
        name: "node",
        icon: "🟩",
        description: "Node.js: a small HTTP server on port 3000.",
        run_command: Some("node index.js"),
        preview_port: Some(3000),
        files: &[
            file!("node", "package.json"),
            file!("node", "index.js"),
            file!("node", "README.md"),
        ],
    },
    Builtin {
        name: "static-web",
        icon: "🌐",
        description: "HTML, CSS and JavaScript served on port 8000.",
        run_command: Some("python3 -m http.server 8000"),
        preview_port: Some(8000),
        files: &[
            file!("static-web", "index.html"),
            file!("static-web", "style.css"),
            file!("static-web", "script.js"),
        ],
    },
];

impl Builtin {
    /// The files a workspace made from this template starts with.
    pub(crate) fn files(&self) -> Vec<SeedFile> {
        self.files
            .iter()
            .map(|(path, contents)| SeedFile {
                path: (*path).to_string(),
                contents: contents.as_bytes().to_vec(),
                executable: false,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn templates_have_files_and_unique_names() {
        let mut names: Vec<_> = super::BUILTIN.iter().map(|t| t.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), super::BUILTIN.len());
        for t in super::BUILTIN {
            assert!(!t.files.is_empty(), "{}", t.name);
            assert!(crate::templates::valid_name(t.name), "{}", t.name);
        }
        for required in ["blank", "python", "node", "static-web"] {
            assert!(names.contains(&required), "{required}");
        }
    }
}
