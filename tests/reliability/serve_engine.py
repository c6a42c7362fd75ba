"""tests.fakes.serve_openai with a listen backlog a load test needs (http.server's default of 5
drops connections when a hundred arrive at once, which would be the fake's failure, not the
gateway's):

    python -m tests.reliability.serve_engine --port 0
"""

from __future__ import annotations

from http.server import ThreadingHTTPServer

from tests.fakes import serve_openai

if __name__ == "__main__":
    ThreadingHTTPServer.request_queue_size = 1024
    serve_openai.main()
