//! Terminal requests of the control socket: create, attach, input, resize, close.
//!
//! Create and attach reply before the terminal's output starts flowing, so the client knows
//! the terminal before its first byte. An attach sends a snapshot of the screen; one that asks
//! for the raw scrollback gets it, and answers the client's emulator gives to queries in it
//! are kept out of the input (see `replay.rs`).

use cove_protocol::*;

use super::Session;
use super::feeds::terminal_exit;
use crate::error::Error;
use crate::registry::Kind;
use crate::terminals::NewTerminal;

impl Session {
    pub(super) async fn create_terminal(
        &mut self,
        r: CreateTerminal,
        request_id: &Option<String>,
    ) -> Result<Option<Event>, Error> {
        let size = match (r.cols, r.rows) {
            (None, None) => None,
            (cols, rows) => Some(cove_pty::Size {
                cols: cols.unwrap_or(80),
                rows: rows.unwrap_or(24),
            }),
        };
        let terminal = self.ws.terminals.create(NewTerminal {
            id: r.terminal_id,
            command: r.command,
            cwd: r.cwd,
            env: r.env.unwrap_or_default().into_iter().collect(),
            size,
        })?;
        let created = Event::TerminalCreated(TerminalCreated {
            terminal_id: terminal.id.clone(),
        });
        self.reply(request_id, Ok(created)).await;
        let reader = terminal.log.reader(Some(0));
        self.feed(terminal, reader, None);
        Ok(None)
    }

    /// Without an offset: a snapshot of the screen (one `terminal_output` without an offset),
    /// or with `replay: raw` the scrollback (and queries in it kept from getting answers);
    /// with an offset, output resumes at that byte, as on the raw socket: a resume is not a
    /// replay.
    pub(super) async fn attach_terminal(
        &mut self,
        r: AttachTerminal,
        request_id: &Option<String>,
    ) -> Result<Option<Event>, Error> {
        let terminal = self.ws.terminals.get(&r.terminal_id)?;
        let size = terminal.size();
        let (reader, snapshot) = match (r.offset, r.replay.unwrap_or_default()) {
            (None, Replay::Screen) => {
                let (snapshot, reader) = terminal.attach_screen(None);
                (reader, snapshot)
            }
            (offset, _) => (terminal.log.reader(offset), None),
        };
        let attached = Event::TerminalAttached(TerminalAttached {
            terminal_id: terminal.id.clone(),
            cols: size.cols,
            rows: size.rows,
            offset: Some(reader.position()),
            gap: Some(reader.starts_with_gap()),
        });
        self.reply(request_id, Ok(attached)).await;
        if let Some(snapshot) = snapshot {
            let screen = Event::TerminalOutput(TerminalOutput {
                terminal_id: terminal.id.clone(),
                data: snapshot,
                offset: None,
            });
            if self.out.event(screen).await.is_err() {
                return Ok(None);
            }
        }
        let replay = match (r.offset, r.replay) {
            (None, Some(Replay::Raw)) => {
                let filter = self.answers.entry(terminal.id.clone()).or_default().clone();
                Some((terminal.log.end(), filter))
            }
            _ => None,
        };
        self.feed(terminal, reader, replay);
        Ok(None)
    }

    /// Types into a terminal; no reply unless it fails.
    pub(super) async fn terminal_input(
        &mut self,
        r: TerminalInput,
    ) -> Result<Option<Event>, Error> {
        let terminal = self.ws.terminals.get(&r.terminal_id)?;
        let input = match self.answers.get(&terminal.id) {
            Some(filter) => filter
                .lock()
                .unwrap()
                .filter(r.input.as_bytes())
                .into_owned(),
            None => r.input.into_bytes(),
        };
        if !input.is_empty() {
            terminal.write(&input).await?;
        }
        Ok(None)
    }

    /// Resizes a terminal; no reply unless it fails.
    pub(super) fn resize_terminal(&mut self, r: ResizeTerminal) -> Result<Option<Event>, Error> {
        let terminal = self.ws.terminals.get(&r.terminal_id)?;
        terminal.resize(cove_pty::Size {
            cols: r.cols,
            rows: r.rows,
        })?;
        Ok(None)
    }

    /// Closes a terminal; the reply is its exit, once everything it printed was sent.
    pub(super) fn close_terminal(
        &mut self,
        r: TerminalRef,
        request_id: &Option<String>,
    ) -> Result<Option<Event>, Error> {
        let ws = self.ws.clone();
        let terminal = ws.terminals.get(&r.terminal_id)?;
        let feed = self.quiet_feed(Kind::Terminal, &terminal.id);
        let out = self.out.clone();
        let request_id = request_id.clone();
        // The close, and forgetting the terminal after it, belong to the runner: this session
        // only waits for the outcome to reply.
        let closing = terminal.close(ws.launch.limits.stop_grace);
        let closed = {
            let (owner, terminal) = (ws.clone(), terminal.clone());
            ws.tasks.spawn(async move {
                let exit = closing.await;
                owner.terminals.remove(&terminal);
                exit
            })
        };
        self.waits.spawn(async move {
            let exit = closed.await.unwrap_or_default();
            if let Some(task) = feed {
                let _ = task.await;
            }
            let event = terminal_exit(&terminal.id, exit);
            let _ = out.send(ServerMessage::reply(event, request_id)).await;
        });
        Ok(None)
    }
}
