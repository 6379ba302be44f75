#!/usr/bin/env python3
"""A gRPC client that is not ours: list btyd's images with Python grpcio.

Usage: list_images.py SOCKET

Connects to unix://SOCKET, discovers the services and the bty.v1 message
types through server reflection only (no generated code, no .proto files),
calls /bty.v1.CatalogService/ListImages and prints one JSON object:

    {"services": [...], "images": [{"names": [...], "sha256": "..."|null}, ...]}

Needs only grpcio, grpcio-reflection and protobuf (scripts/test installs
them into target/pyenv).
"""

import json
import sys

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

LIST_IMAGES = "/bty.v1.CatalogService/ListImages"
TIMEOUT_S = 10
# grpc-core >= 1.57 sends the %-encoded socket path as :authority on unix:
# targets, which the Rust HTTP/2 stack (h2) rejects with PROTOCOL_ERROR
# (grpc/grpc#38142, hyperium/h2#487). "localhost" is the UDS convention
# grpc-go, kubernetes and tonic's own client use.
CHANNEL_OPTIONS = [("grpc.default_authority", "localhost")]


def main(argv):
    if len(argv) != 2:
        print(f"usage: {argv[0]} SOCKET", file=sys.stderr)
        return 2
    with grpc.insecure_channel(f"unix://{argv[1]}", options=CHANNEL_OPTIONS) as channel:
        grpc.channel_ready_future(channel).result(timeout=TIMEOUT_S)
        reflection = ProtoReflectionDescriptorDatabase(channel)
        services = sorted(reflection.get_services())

        pool = descriptor_pool.DescriptorPool(reflection)
        request_type = message_factory.GetMessageClass(
            pool.FindMessageTypeByName("bty.v1.ListImagesRequest")
        )
        response_type = message_factory.GetMessageClass(
            pool.FindMessageTypeByName("bty.v1.ListImagesResponse")
        )
        list_images = channel.unary_unary(
            LIST_IMAGES,
            request_serializer=request_type.SerializeToString,
            response_deserializer=response_type.FromString,
        )
        response = list_images(request_type(), timeout=TIMEOUT_S)

    images = [
        {
            "names": list(image.names),
            "sha256": image.sha256 if image.HasField("sha256") else None,
        }
        for image in response.images
    ]
    json.dump({"services": services, "images": images}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
