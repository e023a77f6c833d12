"""Write what floor.sh's containers read: the htpasswd hash of a new
password and the three configuration files, rendered by the role's own
pure functions (module_utils), as the role writes them.

    floor_config.py MODULE_UTILS DIR PORT PUSH_PORT UPSTREAM_URL BCRYPT_COST

Prints the abstract socket names of the push and proxy registries.
"""

from __future__ import annotations

import os
import secrets
import sys

import bcrypt

import ansible.module_utils

module_utils, root, port, push_port, upstream, cost = sys.argv[1:7]
ansible.module_utils.__path__.append(module_utils)

from ansible.module_utils.buildset_registry.common.layout import CONTAINER_CERTS  # noqa: E402
from ansible.module_utils.buildset_registry.registry.config import render_config  # noqa: E402
from ansible.module_utils.buildset_registry.registry.endpoints import socket_name  # noqa: E402
from ansible.module_utils.buildset_registry.registry.front import render_front_config  # noqa: E402
from ansible.module_utils.buildset_registry.registry.login import derive_tokens  # noqa: E402

password = secrets.token_urlsafe(24)
hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(int(cost), prefix=b"2b")).decode()
sockets = {kind: socket_name(root, kind) for kind in ("push", "proxy")}
files = {
    "push.yml": render_config("push", sockets["push"]),
    "proxy.yml": render_config("proxy", sockets["proxy"], upstream),
    "front.json": render_front_config(
        port=int(port),
        push_port=int(push_port),
        push_dial="unix/" + sockets["push"],
        namespaces=[("docker.io", "docker.io", "unix/" + sockets["proxy"])],
        cert_file=CONTAINER_CERTS + "/domain.crt",
        key_file=CONTAINER_CERTS + "/domain.key",
        username="zuul",
        password_hash=hashed,
        tokens=derive_tokens("zuul", password),
        anonymous_pull=False,
    ),
}
for name, text in files.items():
    path = os.path.join(root, "config", name)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(text)
print(sockets["push"][1:], sockets["proxy"][1:])
