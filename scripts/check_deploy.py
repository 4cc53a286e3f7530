"""Composes the kustomizations of deploy/k8s and validates what they produce.

Kustomize itself is not installed here; this composes the subset the manifests use
(resources, namespace, images, labels, strategic-merge patches by kind and name) and
fails on anything else, so a new kustomize feature cannot be silently ignored.
"""
import copy
import json
import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.request

import jsonschema
import kubernetes_validate
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
K8S_VERSION = "1.30.0"
KNOWN = {"apiVersion", "kind", "resources", "namespace", "images", "labels", "patches"}


def fail(message):
    print(f"check-deploy: {message}", file=sys.stderr)
    sys.exit(1)


def merge(base, patch):
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


def build(directory):
    directory = pathlib.Path(directory)
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(spec) - KNOWN
    if unknown:
        fail(f"{directory}: kustomization fields not supported by this check: {sorted(unknown)}")
    docs = []
    for resource in spec.get("resources", []):
        path = directory / resource
        if path.is_dir():
            docs.extend(build(path))
        else:
            docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    for patch in spec.get("patches", []):
        body = yaml.safe_load((directory / patch["path"]).read_text())
        targets = [d for d in docs if d["kind"] == body["kind"] and d["metadata"]["name"] == body["metadata"]["name"]]
        if len(targets) != 1:
            fail(f"{directory}: patch {patch['path']} matches {len(targets)} resources")
        merge(targets[0], body)
    for doc in docs:
        if "namespace" in spec:
            doc["metadata"]["namespace"] = spec["namespace"]
        for label in spec.get("labels", []):
            doc["metadata"].setdefault("labels", {}).update(label["pairs"])
        for image in spec.get("images", []):
            for container in containers(doc):
                if container["image"].split(":")[0] == image["name"]:
                    container["image"] = f"{image.get('newName', image['name'])}:{image.get('newTag', 'latest')}"
    return docs


def containers(doc):
    spec = doc.get("spec", {})
    template = spec.get("template") or spec.get("jobTemplate", {}).get("spec", {}).get("template")
    return (template or {}).get("spec", {}).get("containers", [])


def validate(docs, where):
    schema = json.loads((ROOT / "deploy/schemas/keda-scaledobject.schema.json").read_text())
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for doc in docs:
        label = f"{where}: {doc['kind']}/{doc['metadata']['name']}"
        if doc["apiVersion"].startswith("keda.sh/"):
            errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc), key=str)
            if errors:
                fail(f"{label}: {errors[0].message} at {list(errors[0].path)}")
            target = doc["spec"]["scaleTargetRef"]["name"]
            if ("Deployment", target) not in names:
                fail(f"{label}: scales {target}, which is not defined")
        else:
            try:
                kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
            except kubernetes_validate.ValidationError as e:
                fail(f"{label}: {e.message} at {list(e.path)}")
        print(f"ok  {label}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def drop_streams(redis_url, *keys):
    """Deletes the streams (and so their consumer groups) a checked worker created."""
    subprocess.run(["redis-cli", "-u", redis_url, "DEL", *keys], check=True, stdout=subprocess.DEVNULL)


def check_entrypoints(docs, bin_dir):
    """Runs each container's command with the ConfigMap's environment (services and
    secrets pointed at the local ones) and checks the binary accepts it and starts."""
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    local = {
        "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/rules_db"),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "RULES_API_KEYS": "deploy-check-key-0123456789",
        "PATH": os.environ.get("PATH", ""),
    }
    for doc in docs:
        for container in containers(doc):
            command = container["command"]
            binary = pathlib.Path(bin_dir) / command[0]
            if not binary.is_file():
                fail(f"{doc['metadata']['name']}: {command[0]} is not a binary of this project (built: {binary})")
            env = dict(config)
            env.update(local)
            port = free_port()
            if "API__BIND" in json.dumps(config):
                env["RULES__API__BIND"] = f"127.0.0.1:{port}"
            env["RULES__WORKER__HTTP_BIND"] = f"127.0.0.1:{port}"
            env["RULES__WORKER__STREAMS"] = f"deploy-check:{port}"
            env["RULES__WORKER__DEAD_LETTER_STREAM"] = f"deploy-check:{port}:dead"
            process = subprocess.Popen([str(binary), *command[1:]], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if command[0] == "rules-migrate":
                _, err = process.communicate(timeout=60)
                if process.returncode != 0:
                    fail(f"{command[0]} rejected the manifest's environment: {err.strip()}")
            else:
                started = False
                for _ in range(100):
                    if process.poll() is not None:
                        fail(f"{command[0]} exited with the manifest's environment: {process.stderr.read().strip()}")
                    try:
                        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=1) as r:
                            started = r.status == 200
                    except OSError:
                        pass
                    if started:
                        break
                    time.sleep(0.1)
                process.terminate()
                process.wait(timeout=30)
                if not started:
                    fail(f"{command[0]} did not become ready with the manifest's environment")
                drop_streams(local["REDIS_URL"], env["RULES__WORKER__STREAMS"], env["RULES__WORKER__DEAD_LETTER_STREAM"])
                if process.returncode != 0:
                    fail(f"{command[0]} exited {process.returncode} on SIGTERM")
            print(f"ok  {doc['metadata']['name']}: {' '.join(command)} starts with the manifest's environment")


def check_compose():
    compose = yaml.safe_load((ROOT / "deploy/docker-compose.yml").read_text())
    services = compose["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            if dependency not in services:
                fail(f"compose: {name} depends on unknown service {dependency}")
        command = service.get("command", [])
        if command and command[0] not in ("rules-api", "rules-worker", "rules-migrate", "redis-server"):
            fail(f"compose: {name} runs {command[0]}, not a binary of this project")
    if services["api"]["depends_on"]["migrate"]["condition"] != "service_completed_successfully":
        fail("compose: api must wait for migrate to complete")
    print("ok  deploy/docker-compose.yml")


def main():
    bin_dir = sys.argv[1] if len(sys.argv) > 1 else "target/debug"
    base = build(ROOT / "deploy/k8s/base")
    validate(base, "base")
    overlay = build(ROOT / "deploy/k8s/overlays/example")
    validate(overlay, "overlays/example")
    scaled = next(d for d in overlay if d["kind"] == "ScaledObject")
    if scaled["spec"]["maxReplicaCount"] != 16 or scaled["metadata"]["namespace"] != "rule-engine-prod":
        fail("overlays/example: the patch or namespace was not applied")
    secret = yaml.safe_load((ROOT / "deploy/k8s/base/secret.example.yaml").read_text())
    validate([secret], "base (example secret)")
    check_compose()
    check_entrypoints(base, bin_dir)
    print("check-deploy: all good")


if __name__ == "__main__":
    main()
