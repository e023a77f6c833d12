# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""The one way a library module runs: AnsibleModule from its spec, the job,
every secret masked, errors in the module's own names, one result shape.

A job is ``job(params, check_mode, result)``. It fills ``result`` (a dict
that starts as ``changed=False`` plus ``start``) as it goes, so that a
failure still reports what was done, and may put there besides its own keys:

- ``warnings``: texts, shown as Ansible warnings;
- ``diff``: before/after (a dict, or a list of them), shown only with
  ``--diff``; it never holds a secret.

It raises RegistryError for what the user has to fix; an OSError (a file
it could not read, write or change) fails the task naming the file.
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.buildset_registry.common import libraries
from ansible.module_utils.buildset_registry.common.errors import RegistryError
from ansible.module_utils.buildset_registry.common.options import mask_store_secrets

MASKED = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
OS_HINT = "fix its permissions, or run the task as a user that may change it"


def run_module(
    spec,
    job,
    names=None,
    required_if=None,
    needs=None,
    start=None,
    secrets=None,
    hidden=(),
    returns=(),
    os_hint=OS_HINT,
):
    """Run job as a module task; exits the process with its result.

    spec: the argument spec. names: option -> the name an error shows
    (default: the spec's own names; the role's module gives the role
    variables). needs: the Python libraries the job imports (names, or a
    dict of name -> its import spec, None when it is missing); one that is
    missing or older than libraries.LEAST fails the task before the job.
    secrets: params -> values masked wherever they appear, besides the
    no_log options and the object store's credentials.
    hidden: options echoed as masked in the invocation. returns: the key
    path in the result of the one secret the module exists to return (its
    task is no_log); it stays masked in check mode, whose output --diff
    shows. os_hint: the fix an OSError's message suggests.
    """
    module = AnsibleModule(argument_spec=spec, required_if=required_if, supports_check_mode=True)
    result = dict(start or {}, changed=False)
    invocation = _mask(module, secrets, hidden)
    missing = {name: None for name, spec in needs.items() if spec is None} if isinstance(needs, dict) else {}
    problems = libraries.problems(list(needs or ()), found=missing)
    if problems:
        module.fail_json(msg="; ".join(problems), invocation=invocation, **result)
    try:
        job(module.params, module.check_mode, result)
    except RegistryError as e:
        _fail(module, e.render(names or {name: name for name in spec}), result, invocation)
    except OSError as e:
        _fail(module, os_error_message(e, os_hint), result, invocation)
    _warn(module, result)
    diff = result.pop("diff", None)
    if module._diff and diff is not None:
        result["diff"] = diff
    secret = _dig(result, returns)
    if secret and module.check_mode:
        module.no_log_values.add(secret)
    elif secret:
        module.no_log_values.discard(secret)
    module.exit_json(invocation=invocation, **result)


def _mask(module, secrets, hidden):
    """Mask every secret in the output; return the invocation to echo."""
    mask_store_secrets(module)
    if secrets:
        module.no_log_values.update(v for v in secrets(module.params) if v)
    args = dict(module.params)
    for name, option in module.argument_spec.items():
        if args.get(name) and (option.get("no_log") or name in hidden):
            args[name] = MASKED
    return {"module_args": args}


def _fail(module, msg, result, invocation):
    _warn(module, result)
    result.pop("diff", None)
    module.fail_json(msg=msg, invocation=invocation, **result)


def _warn(module, result):
    for warning in result.pop("warnings", []):
        module.warn(warning)


def _dig(result, keys):
    for key in keys:
        result = result.get(key) if isinstance(result, dict) else None
    return result if keys else None


def os_error_message(error, hint=OS_HINT):
    """An OSError as a message naming the file, its cause and the fix."""
    if error.filename is None:
        return "%s (%s)" % (error, hint)
    return "%s: %s (%s)" % (error.filename, error.strerror or error, hint)
