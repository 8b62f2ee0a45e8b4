#!/usr/bin/env python3
"""Open N keep-alive connections to 127.0.0.1:PORT and hold them idle.

usage: idle_client.py PORT N MODE RELEASE_FILE MAX_HOLD_S

MODE "request": each connection sends one GET, reads the whole response, then stays open
                (an idle keep-alive connection between requests);
MODE "connect": each connection is only opened (accepted, never sends a byte).

Prints "READY <open> <failed>" once every connection has been tried, then holds them until
RELEASE_FILE exists or MAX_HOLD_S seconds pass, then closes everything and exits. Only ever
connects to 127.0.0.1.
"""
import asyncio
import os
import sys
import time

CONCURRENCY = 256


async def open_one(port: int, mode: str, sem: asyncio.Semaphore, conns: list) -> bool:
    async with sem:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
        except (OSError, asyncio.TimeoutError):
            return False
        if mode == "request":
            try:
                writer.write(b"GET /idle HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n")
                await writer.drain()
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                if not head.startswith(b"HTTP/1.1 200"):
                    writer.close()
                    return False
                if length:
                    await asyncio.wait_for(reader.readexactly(length), 10)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
                writer.close()
                return False
        conns.append((reader, writer))
        return True


async def main() -> None:
    port, n, mode, release, max_hold = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])
    sem = asyncio.Semaphore(CONCURRENCY)
    conns: list = []
    results = await asyncio.gather(*(open_one(port, mode, sem, conns) for _ in range(n)))
    ok = sum(results)
    print(f"READY {ok} {n - ok}", flush=True)
    deadline = time.monotonic() + max_hold
    while time.monotonic() < deadline and not os.path.exists(release):
        await asyncio.sleep(0.2)
    # Still open? (the server may close idle connections on its own timeout)
    alive = sum(1 for r, _ in conns if not r.at_eof())
    print(f"ALIVE_AT_RELEASE {alive}", flush=True)
    for _, w in conns:
        w.close()
    await asyncio.sleep(0.5)


if __name__ == "__main__":
    asyncio.run(main())
