//! Process requests of the control socket: run, stop, subscribe.

use cove_protocol::*;

use super::Session;
use super::feeds::process_exit;
use crate::error::Error;
use crate::processes::{NewProcess, parse_signal};
use crate::registry::Kind;

impl Session {
    /// Starts a process; replies before its output starts flowing.
    pub(super) async fn run_command(
        &mut self,
        r: RunCommand,
        request_id: &Option<String>,
    ) -> Result<Option<Event>, Error> {
        let process = self.ws.processes.start(NewProcess {
            id: r.process_id,
            command: r.command,
            args: r.args,
            cwd: r.cwd,
            env: r.env.unwrap_or_default().into_iter().collect(),
        })?;
        let started = Event::ProcessStarted(ProcessStarted {
            process_id: process.id.clone(),
            command: process.command.clone(),
            args: process.args.clone(),
            pid: Some(process.pid),
        });
        self.reply(request_id, Ok(started)).await;
        let reader = process.log.reader(Some(0));
        self.feed(process, reader, None);
        Ok(None)
    }

    /// Stops (or signals) a process; the reply is its exit, once all its output was sent.
    pub(super) fn stop_process(
        &mut self,
        r: StopProcess,
        request_id: &Option<String>,
    ) -> Result<Option<Event>, Error> {
        // A bad signal is refused before the id is looked up.
        let signal = r.signal.as_ref().map(parse_signal).transpose()?;
        let process = self.ws.processes.get(&r.process_id)?;
        let feed = self.quiet_feed(Kind::Process, &process.id);
        let out = self.out.clone();
        let request_id = request_id.clone();
        // The stop belongs to the runner: this session only waits for the outcome to reply.
        let stopped = process.stop(signal, self.ws.launch.limits.stop_grace);
        self.waits.spawn(async move {
            let exit = stopped.await;
            if let Some(task) = feed {
                let _ = task.await;
            }
            let event = process_exit(&process.id, exit);
            let _ = out.send(ServerMessage::reply(event, request_id)).await;
        });
        Ok(None)
    }

    /// Follows a process's output from the oldest byte kept.
    pub(super) fn subscribe_process(&mut self, r: ProcessRef) -> Result<Option<Event>, Error> {
        let process = self.ws.processes.get(&r.process_id)?;
        let reader = process.log.reader(None);
        self.feed(process, reader, None);
        Ok(Some(Event::Ok(Empty {})))
    }
}
