"""The Docker engine restarts while the proxy's upstream is down (issue 24):
pushed images are served again by themselves, the proxy waits without
crash-looping, and it serves once the upstream is back.

Restarting the engine disturbs every container on the host, so this is
marked engine_restart (deselect with `-m "not engine_restart"`) and sorts
last, after test_zz_engine_restart.py.
"""

import time

import pytest
from clients import Clients, make_image
from harness import docker
from test_upstream_down import UPSTREAM_IMAGE, proxy_state, timed_status, wait_healed, warned
from test_zz_engine_restart import BACK_WITHIN, endpoints_answer, restart_engine, wait_for


@pytest.mark.engine_restart
def test_pushed_images_survive_an_engine_restart_while_the_upstream_is_down(
    registry, private_upstream, tmp_path, record_property
):
    up = private_upstream(UPSTREAM_IMAGE)
    variables = {"buildset_registry_proxy_remote_url": up["url"]}
    _, facts = registry.apply_ok(variables)
    c = Clients(facts, tmp_path)
    image = make_image(tmp_path / "image")
    assert c.push(image, "push", "buildset/outage-survivor:1").returncode == 0
    # The stand-in upstream has restart=always: the engine would bring it back.
    assert docker("update", "--restart", "no", up["name"]).returncode == 0
    assert docker("stop", up["name"]).returncode == 0

    how = restart_engine()
    start = time.monotonic()
    status = {}
    back = wait_for(lambda: endpoints_answer(c, status), BACK_WITHIN)
    elapsed = time.monotonic() - start
    record_property("back_after_seconds", round(elapsed, 1))
    print(f"engine restarted by {how} with the upstream down; endpoints back after {elapsed:.1f} s")
    assert back, f"not back within {BACK_WITHIN} s: {status}"
    for kind in ("proxy", "push"):
        assert c.digest(kind, "buildset/outage-survivor:1") == image.digest
    status, took = timed_status(c, UPSTREAM_IMAGE, 5)
    assert status == 404 and took < 5, (status, took)

    # The proxy waits under Docker's back-off, not in a loop.
    time.sleep(20)
    state, restarts = proxy_state("docker", registry.vars["buildset_registry_proxy_container"])
    print(f"proxy 20 s after the engine restart: {state}, {restarts} restarts")
    assert state == "restarting" and restarts <= 12, (state, restarts)

    # A re-run while it is down changes nothing and warns; then it heals.
    again, _ = registry.apply_ok(variables)
    warned(again, up["url"], "buildset_registry_proxy_remote_url")
    assert docker("start", up["name"]).returncode == 0
    wait_healed(c, UPSTREAM_IMAGE, record_property, "after the engine restart")
