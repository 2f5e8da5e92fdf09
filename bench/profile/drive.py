# One terminal flood through a runner's own socket (no server): 30 MB of 1000-byte lines.
import asyncio, sys, time, websockets
async def main():
    sock = sys.argv[1]
    async with websockets.unix_connect(sock, "ws://localhost/terminals/t1/ws", max_size=None) as ws:
        first = await ws.recv()
        cmd = "python3 -c \"import sys; l='x'*1000+'\\n'; w=sys.stdout.write; [w(l) for _ in range(30000)]\"; exit\n"
        await ws.send(cmd.encode())
        total = 0; t0 = time.time()
        try:
            while True:
                m = await ws.recv()
                if isinstance(m, bytes): total += len(m)
        except websockets.ConnectionClosed:
            pass
        print("received", total, "in", round(time.time() - t0, 2), "s")
asyncio.run(main())
