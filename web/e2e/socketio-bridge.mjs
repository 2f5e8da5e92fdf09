// A stock socket.io-client driven by a test over stdin/stdout, one JSON object per line.
//
// In:  {"op":"connect","id":"a","url":"http://127.0.0.1:PORT/processes","transports":["polling"],
//       "headers":{"Cookie":"..."}}
//      {"op":"emit","id":"a","event":"subscribe:logs","data":{...}}  (no "data": no argument)
//      {"op":"pause","id":"a"} / {"op":"resume","id":"a"}  (stop / start reading a WebSocket)
//      {"op":"close","id":"a"}
// Out: {"id":"a","event":"connect","transport":"websocket"}, {"id":"a","event":"connect_error",
//      "message":"..."}, {"id":"a","event":"disconnect","reason":"..."}, and every event the
//      server sends as {"id":"a","event":NAME,"data":FIRST_ARG}. A `logs` event's text is
//      replaced by its length (`bytes`), its first and last 200 characters (`head`, `tail`)
//      and, when short, the whole of it (`text`).
import { io } from 'socket.io-client';
import readline from 'node:readline';

const sockets = new Map();

function out(message) {
  process.stdout.write(JSON.stringify(message) + '\n');
}

function summarize(event, data) {
  if (event !== 'logs' || !data || typeof data.data !== 'string') return data;
  const text = data.data;
  const { data: _dropped, ...rest } = data;
  return {
    ...rest,
    bytes: Buffer.byteLength(text),
    head: text.slice(0, 200),
    tail: text.slice(-200),
    text: text.length <= 4096 ? text : undefined,
  };
}

function rawSocket(socket) {
  const transport = socket.io.engine && socket.io.engine.transport;
  return transport && transport.ws && transport.ws._socket;
}

function handle(command) {
  const { op, id } = command;
  if (op === 'connect') {
    const socket = io(command.url, {
      transports: command.transports || ['polling', 'websocket'],
      upgrade: command.upgrade !== false,
      extraHeaders: command.headers || {},
      forceNew: true,
      reconnection: false,
      timeout: 10000,
    });
    sockets.set(id, socket);
    socket.on('connect', () =>
      out({ id, event: 'connect', transport: socket.io.engine.transport.name }),
    );
    socket.io.engine?.on?.('upgrade', (t) => out({ id, event: 'upgrade', transport: t.name }));
    socket.on('connect_error', (e) =>
      out({ id, event: 'connect_error', message: String(e && e.message), description: String(e && e.description) }),
    );
    socket.on('disconnect', (reason) => out({ id, event: 'disconnect', reason }));
    socket.onAny((event, data) => out({ id, event, data: summarize(event, data) }));
  } else if (op === 'emit') {
    // Without `data`, the event carries no argument at all (not even null).
    if (command.data === undefined) sockets.get(id).emit(command.event);
    else sockets.get(id).emit(command.event, command.data);
  } else if (op === 'pause') {
    const raw = rawSocket(sockets.get(id));
    if (!raw) throw new Error('pause needs a WebSocket transport');
    raw.pause();
    out({ id, event: 'paused' });
  } else if (op === 'resume') {
    rawSocket(sockets.get(id)).resume();
    out({ id, event: 'resumed' });
  } else if (op === 'close') {
    sockets.get(id).close();
    sockets.delete(id);
    out({ id, event: 'closed' });
  } else {
    throw new Error(`unknown op ${op}`);
  }
}

const lines = readline.createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (!line.trim()) return;
  try {
    handle(JSON.parse(line));
  } catch (e) {
    out({ event: 'bridge_error', message: String(e && e.stack) });
  }
});
lines.on('close', () => {
  for (const socket of sockets.values()) socket.close();
  process.exit(0);
});
