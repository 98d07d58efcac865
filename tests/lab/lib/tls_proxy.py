"""A TLS terminator in front of moto's plain-HTTP server, for pgBackRest before 2.58
(HTTPS only). moto closes TLS without close_notify, which pgBackRest rejects on empty
bodies (facts.md §9); this proxy speaks TLS to pgBackRest and ends every TLS session with
close_notify (asyncio's SSL transport sends it on close).

tls_proxy.py CERT KEY LISTEN_PORT TARGET_PORT      (127.0.0.1 on both sides)
"""
import asyncio
import ssl
import sys

cert, key, listen_port, target_port = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
        pass
    finally:
        try:
            writer.close()
            await writer.wait_closed()
        except (ConnectionError, ssl.SSLError):
            pass


async def handle(client_reader, client_writer):
    try:
        target_reader, target_writer = await asyncio.open_connection("127.0.0.1", target_port)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(pipe(client_reader, target_writer), pipe(target_reader, client_writer))


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", listen_port, ssl=context)
    async with server:
        await server.serve_forever()


asyncio.run(main())
