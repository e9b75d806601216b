"""Video files and thumbnails through nginx (X-Accel-Redirect, ASTRADUP_ACCEL_REDIRECT): Django
checks the request and the file, a real nginx in front sends the bytes and answers Range and HEAD."""

import http.client
import os
import signal
from urllib.parse import urlsplit

import pytest

from lib import topology

from . import factories as make

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(topology.nginx_binary() is None, reason="nginx is not installed"),
]


@pytest.fixture
def nginx(live_server, settings, tmp_path):
    settings.ASTRADUP_ACCEL_REDIRECT = topology.ACCEL_PREFIX
    port = topology.free_port()
    server = topology.start_nginx(
        listen=port, upstream=urlsplit(live_server.url).netloc, run_dir=tmp_path / "nginx", user="root"
    )
    yield port
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=30)


def _request(port: int, path: str, *, method: str = "GET", cookie: str = "", **headers: str):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(method, path, headers={"Cookie": cookie, **headers})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response, body


@pytest.fixture
def viewer_cookie(client):
    client.force_login(make.user("viewer", "viewer"))
    return f"sessionid={client.cookies['sessionid'].value}"


def test_nginx_sends_the_checked_video_with_range_and_head(nginx, live_server, viewer_cookie, tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    data = os.urandom(300_000)
    # a name nginx must not cut at "?" nor decode twice at "%"
    clip = folder / "a clip? 100%.mp4"
    clip.write_bytes(data)
    video = make.video(clip.name, path=str(clip), root=str(folder))
    url = f"/review/videos/{video.pk}/media"

    part, body = _request(nginx, url, cookie=viewer_cookie, Range="bytes=1000-1999")
    assert part.status == 206 and body == data[1000:2000], part.status
    assert part.getheader("Content-Range") == f"bytes 1000-1999/{len(data)}"
    assert part.getheader("Content-Type") == "video/mp4"
    assert part.getheader("Server", "").startswith("nginx")
    head, body = _request(nginx, url, method="HEAD", cookie=viewer_cookie)
    assert head.status == 200 and body == b"" and head.getheader("Content-Length") == str(len(data))
    assert head.getheader("Accept-Ranges") == "bytes"
    whole, body = _request(nginx, url, cookie=viewer_cookie)
    assert whole.status == 200 and body == data
    # Django itself sent no byte of it: only the header that hands the file to nginx
    direct, body = _request(urlsplit(live_server.url).port, url, cookie=viewer_cookie)
    assert body == b"" and direct.getheader("X-Accel-Redirect", "").startswith(topology.ACCEL_PREFIX + "/")
    # no session: Django answers (the login redirect), nginx sends nothing
    anonymous, _ = _request(nginx, url)
    assert anonymous.status == 302


def test_a_symlink_out_of_the_roots_is_refused_before_nginx_sees_a_path(nginx, viewer_cookie, tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"secret" * 1000)
    (folder / "link.mp4").symlink_to(secret)
    video = make.video("link.mp4", path=str(folder / "link.mp4"), root=str(folder))
    response, body = _request(nginx, f"/review/videos/{video.pk}/media", cookie=viewer_cookie)
    assert response.status == 404 and b"secret" not in body


def test_the_internal_location_is_not_reachable_from_outside(nginx):
    response, body = _request(nginx, f"{topology.ACCEL_PREFIX}/etc/passwd")
    assert response.status == 404 and b"root:" not in body
