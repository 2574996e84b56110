#!/bin/sh
# Entrypoint of notifier's Lambda image: chooses the runtime that drives the handler.
#
#   NOTIFIER_RUNTIME=custom    (default) `python -m notifier.runtime`: raw event bytes to the
#                              Rust decoder; the handler factory is NOTIFIER_HANDLER (default
#                              notifier.handler:build_handler).
#   NOTIFIER_RUNTIME=standard  the base image's own entrypoint (awslambdaric) with the handler
#                              named by the command (CMD: notifier.handler.lambda_handler).
#
# Outside Lambda (no AWS_LAMBDA_RUNTIME_API) the custom runtime runs under the Runtime
# Interface Emulator the base image ships (the standard entrypoint does the same itself), so
# `docker run -p 9000:8080 IMAGE` answers POST /2015-03-31/functions/function/invocations.
# NOTIFIER_PYTHON, NOTIFIER_RIE and LAMBDA_ENTRYPOINT exist for the tests; Lambda never sets them.
set -eu

python="${NOTIFIER_PYTHON:-python3}"

case "${NOTIFIER_RUNTIME:-custom}" in
custom)
    export PYTHONPATH="${LAMBDA_TASK_ROOT:-/var/task}${PYTHONPATH:+:$PYTHONPATH}"
    if [ -z "${AWS_LAMBDA_RUNTIME_API:-}" ]; then
        exec "${NOTIFIER_RIE:-/usr/local/bin/aws-lambda-rie}" "$python" -m notifier.runtime
    fi
    exec "$python" -m notifier.runtime
    ;;
standard)
    exec "${LAMBDA_ENTRYPOINT:-/lambda-entrypoint.sh}" "$@"
    ;;
*)
    echo "notifier-entrypoint: NOTIFIER_RUNTIME must be custom or standard, not '${NOTIFIER_RUNTIME}'" >&2
    exit 64
    ;;
esac
