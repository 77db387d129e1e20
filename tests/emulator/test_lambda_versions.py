"""Published versions keep their own code hash, code location and description (GetFunction and
GetFunctionConfiguration with Qualifier), and image functions resolve their image URI."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile

import pytest
from conftest import ROLE, unique


def fixed_zip(marker: str) -> bytes:
    """The same bytes every time for the same marker (fixed entry time stamp)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(zipfile.ZipInfo("bootstrap", date_time=(2026, 1, 1, 0, 0, 0)), f"#!/bin/sh\n# {marker}\n")
    return buf.getvalue()


def code_sha256(data: bytes) -> str:
    """Lambda's CodeSha256: base64 of the SHA-256 of the deployment package."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_each_version_keeps_its_code_sha256_and_description(clients):
    lam = clients.lam
    fn, other = unique("versioned"), unique("same-bytes")
    one, two = fixed_zip("one"), fixed_zip("two")
    lam.create_function(FunctionName=fn, Runtime="provided.al2023", Role=ROLE, Handler="bootstrap", Code={"ZipFile": one}, Description="the function")
    v1 = lam.publish_version(FunctionName=fn, Description="build 101 (SAM VersionDescription)")
    lam.update_function_code(FunctionName=fn, ZipFile=two)
    v2 = lam.publish_version(FunctionName=fn, Description="build 102")
    assert (v1["Version"], v2["Version"]) == ("1", "2")
    assert v1["CodeSha256"] == code_sha256(one) and v2["CodeSha256"] == code_sha256(two)
    assert v1["Description"] == "build 101 (SAM VersionDescription)" and v2["Description"] == "build 102"
    for version, data, description in (("1", one, "build 101 (SAM VersionDescription)"), ("2", two, "build 102"), ("$LATEST", two, "the function")):
        config = lam.get_function_configuration(FunctionName=fn, Qualifier=version)
        got = lam.get_function(FunctionName=fn, Qualifier=version)
        assert config["CodeSha256"] == got["Configuration"]["CodeSha256"] == code_sha256(data), version
        assert config["CodeSize"] == len(data)
        assert config["Description"] == got["Configuration"]["Description"] == description, version
        assert config["Version"] == version
    # An older version's code location is its own, not the latest upload's.
    assert lam.get_function(FunctionName=fn, Qualifier="1")["Code"]["Location"] != lam.get_function(FunctionName=fn, Qualifier="2")["Code"]["Location"]
    # Through an alias and a qualified ARN too.
    lam.create_alias(FunctionName=fn, Name="live", FunctionVersion="1")
    assert lam.get_function(FunctionName=fn, Qualifier="live")["Configuration"]["CodeSha256"] == code_sha256(one)
    arn = lam.get_function(FunctionName=fn)["Configuration"]["FunctionArn"]
    assert lam.get_function_configuration(FunctionName=f"{arn}:2")["CodeSha256"] == code_sha256(two)
    # The same bytes in another function: the same hash.
    lam.create_function(FunctionName=other, Runtime="provided.al2023", Role=ROLE, Handler="bootstrap", Code={"ZipFile": one}, Publish=True)
    assert lam.get_function(FunctionName=other, Qualifier="1")["Configuration"]["CodeSha256"] == code_sha256(one)
    # No version without a change: the same bytes again publish nothing new...
    lam.update_function_code(FunctionName=fn, ZipFile=two)
    assert lam.publish_version(FunctionName=fn)["Version"] == "2"
    # ...a configuration change does, and so do new bytes.
    lam.update_function_configuration(FunctionName=fn, Timeout=10)
    assert lam.publish_version(FunctionName=fn)["Version"] == "3"
    lam.update_function_code(FunctionName=fn, ZipFile=fixed_zip("three"), Publish=True)
    assert [v["Version"] for v in lam.list_versions_by_function(FunctionName=fn)["Versions"]] == ["$LATEST", "1", "2", "3", "4"]
    assert lam.get_function_configuration(FunctionName=fn, Qualifier="4")["CodeSha256"] == code_sha256(fixed_zip("three"))
    assert lam.get_function_configuration(FunctionName=fn, Qualifier="3")["CodeSha256"] == code_sha256(two)


REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


def test_image_functions_resolve_their_image_uri_per_version(clients, emulator):
    lam = clients.lam
    fn = unique("image")
    lam.create_function(FunctionName=fn, Role=ROLE, PackageType="Image", Code={"ImageUri": f"{REGISTRY}/checkout:v1"}, Publish=True)
    lam.update_function_code(FunctionName=fn, ImageUri=f"{REGISTRY}/checkout:v2")
    lam.publish_version(FunctionName=fn)
    one = lam.get_function(FunctionName=fn, Qualifier="1")
    two = lam.get_function(FunctionName=fn, Qualifier="2")
    assert one["Code"]["ImageUri"] == f"{REGISTRY}/checkout:v1"  # not the later tag
    assert two["Code"]["ImageUri"] == f"{REGISTRY}/checkout:v2"
    for got in (one, two):
        resolved = got["Code"]["ResolvedImageUri"]
        repo, digest = resolved.split("@")
        assert repo == f"{REGISTRY}/checkout"
        assert digest.startswith("sha256:") and len(digest) == 71
        assert got["Configuration"]["CodeSha256"] == digest[len("sha256:"):]
        assert got["Code"]["RepositoryType"] == "ECR"
    assert one["Code"]["ResolvedImageUri"] != two["Code"]["ResolvedImageUri"]
    # An image URI that names its digest resolves to that digest.
    pinned = "sha256:" + "ab" * 32
    other = unique("pinned")
    lam.create_function(FunctionName=other, Role=ROLE, PackageType="Image", Code={"ImageUri": f"{REGISTRY}/checkout@{pinned}"})
    got = lam.get_function(FunctionName=other)
    assert got["Code"]["ResolvedImageUri"] == f"{REGISTRY}/checkout@{pinned}"
    assert got["Configuration"]["CodeSha256"] == "ab" * 32


def test_image_in_the_emulators_ecr_resolves_to_its_digest(clients, emulator):
    ecr = emulator.client("ecr")
    repo = unique("svc")
    ecr.create_repository(repositoryName=repo)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json", "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023, "digest": "sha256:" + "1" * 64}, "layers": []})
    pushed = ecr.put_image(repositoryName=repo, imageManifest=manifest, imageTag="release")["image"]["imageId"]["imageDigest"]
    fn = unique("from-ecr")
    clients.lam.create_function(FunctionName=fn, Role=ROLE, PackageType="Image", Code={"ImageUri": f"{REGISTRY}/{repo}:release"})
    got = clients.lam.get_function(FunctionName=fn)
    assert got["Code"]["ResolvedImageUri"] == f"{REGISTRY}/{repo}@{pushed}"
    assert got["Configuration"]["CodeSha256"] == pushed.split(":", 1)[1]


@pytest.mark.parametrize("qualifier", ["9", "nope"])
def test_unknown_qualifier_is_not_found(clients, qualifier):
    fn = unique("q")
    clients.lam.create_function(FunctionName=fn, Runtime="provided.al2023", Role=ROLE, Handler="bootstrap", Code={"ZipFile": fixed_zip("q")}, Publish=True)
    with pytest.raises(clients.lam.exceptions.ResourceNotFoundException):
        clients.lam.get_function(FunctionName=fn, Qualifier=qualifier)
