//! Built-in project templates, embedded in the binary.

use cove_backend::SeedFile;

/// A template: what a new workspace starts with.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    pub name: &'static str,
    pub description: &'static str,
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
            include_str!(concat!("../templates/", $template, "/", $path)),
        )
    };
}

/// Every built-in template; the first is the default.
pub(crate) static TEMPLATES: &[Template] = &[
    Template {
        name: "blank",
        description: "An empty workspace with a shell.",
        run_command: None,
        preview_port: None,
        files: &[file!("blank", "README.md")],
    },
    Template {
        name: "python",
        description: "Python 3: a main.py to run and edit.",
        run_command: Some("python3 main.py"),
        preview_port: Some(8000),
        files: &[
            file!("python", "main.py"),
            file!("python", "README.md"),
            file!("python", "requirements.txt"),
        ],
    },
    Template {
        name: "node",
        description: "Node.js: a small HTTP server on port 3000.",
        run_command: Some("node index.js"),
        preview_port: Some(3000),
        files: &[
            file!("node", "package.json"),
            file!("node", "index.js"),
            file!("node", "README.md"),
        ],
    },
    Template {
        name: "static-web",
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

/// The template with this name.
pub(crate) fn find(name: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.name == name)
}

impl Template {
    /// As `GET /api/templates` lists it.
    pub(crate) fn view(&self) -> cove_protocol::rest::Template {
        cove_protocol::rest::Template {
            name: self.name.to_string(),
            description: self.description.to_string(),
            run_command: self.run_command.map(str::to_string),
            preview_port: self.preview_port,
        }
    }

    /// The files a workspace made from this template starts with.
    pub(crate) fn seed(&self) -> Vec<SeedFile> {
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
        let mut names: Vec<_> = super::TEMPLATES.iter().map(|t| t.name).collect();
        names.dedup();
        assert_eq!(names.len(), super::TEMPLATES.len());
        for t in super::TEMPLATES {
            assert!(!t.files.is_empty(), "{}", t.name);
        }
        for required in ["blank", "python", "node", "static-web"] {
            assert!(super::find(required).is_some(), "{required}");
        }
    }
}
