"""An independent gRPC client for scopegate's server reflection and protoset (grpcio,
grpcio-reflection, protobuf), printing what it saw as JSON.

Usage: python - MODE ARG
  reflect ADDR   v1alpha through grpcio-reflection's ProtoReflectionDescriptorDatabase (services,
                 the Check method's types, then one Check built from the reflected descriptors
                 alone), and v1 through a raw stream (its messages are v1alpha's, field for field)
  off ADDR       both reflection services, expecting an RPC error: its status code
  protoset FILE  the FileDescriptorSet loaded into a fresh descriptor_pool
"""

import json
import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from grpc_reflection.v1alpha.reflection_pb2 import ServerReflectionRequest, ServerReflectionResponse

V1 = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
V1ALPHA = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
CHECK = "/envoy.service.auth.v3.Authorization/Check"


def raw_list(channel, path):
    """ListServices over a raw reflection stream at `path`."""
    call = channel.stream_stream(
        path,
        request_serializer=ServerReflectionRequest.SerializeToString,
        response_deserializer=ServerReflectionResponse.FromString,
    )
    responses = call(iter([ServerReflectionRequest(list_services="")]), timeout=10)
    return [s.name for r in responses for s in r.list_services_response.service]


def raw_file_names(channel, path, symbol):
    call = channel.stream_stream(
        path,
        request_serializer=ServerReflectionRequest.SerializeToString,
        response_deserializer=ServerReflectionResponse.FromString,
    )
    responses = call(iter([ServerReflectionRequest(file_containing_symbol=symbol)]), timeout=10)
    names = []
    for response in responses:
        for raw in response.file_descriptor_response.file_descriptor_proto:
            names.append(descriptor_pb2.FileDescriptorProto.FromString(raw).name)
    return names


def reflect(addr):
    channel = grpc.insecure_channel(addr)
    grpc.channel_ready_future(channel).result(timeout=10)
    database = ProtoReflectionDescriptorDatabase(channel)
    pool = descriptor_pool.DescriptorPool(database)
    service = pool.FindServiceByName("envoy.service.auth.v3.Authorization")
    method = service.FindMethodByName("Check")
    # one Check built only from what reflection described: no generated code, no .proto file
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    request = request_class()
    http = request.attributes.request.http
    http.method = "POST"
    http.path = "/v1/orgs/eng/projects/payments/pipelines/deploy_prod/execute"
    http.headers["harness-account"] = "acme"
    http.headers["x-api-key"] = "pat.acme.alicetok01.AliceDemoSecret01"
    check = channel.unary_unary(
        CHECK,
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )
    answer = check(request, timeout=10)
    return {
        "v1alpha_services": sorted(database.get_services()),
        "check_input": method.input_type.full_name,
        "check_output": method.output_type.full_name,
        "check_file": method.input_type.file.name,
        "check_status_code": answer.status.code,
        "check_allowed": answer.WhichOneof("http_response"),
        "check_headers": sorted(h.header.key for h in answer.ok_response.headers),
        "v1_services": sorted(raw_list(channel, V1)),
        "v1_files_for_check_request": raw_file_names(channel, V1, "envoy.service.auth.v3.CheckRequest"),
    }


def off(addr):
    channel = grpc.insecure_channel(addr)
    grpc.channel_ready_future(channel).result(timeout=10)
    codes = {}
    for name, path in [("v1", V1), ("v1alpha", V1ALPHA)]:
        try:
            raw_list(channel, path)
            codes[name] = "OK"
        except grpc.RpcError as error:
            codes[name] = error.code().name
    return codes


def protoset(path):
    with open(path, "rb") as f:
        data = f.read()
    files = descriptor_pb2.FileDescriptorSet.FromString(data)
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    check_request = pool.FindMessageTypeByName("envoy.service.auth.v3.CheckRequest")
    service = pool.FindServiceByName("envoy.service.auth.v3.Authorization")
    return {
        "files": len(files.file),
        "check_request": check_request.full_name,
        "check_request_fields": [f.name for f in check_request.fields],
        "check_input": service.FindMethodByName("Check").input_type.full_name,
        "health": pool.FindServiceByName("grpc.health.v1.Health").full_name,
        "snapshot_service": pool.FindServiceByName("scopegate.v1.SnapshotService").full_name,
    }


def main():
    mode, arg = sys.argv[1], sys.argv[2]
    result = {"reflect": reflect, "off": off, "protoset": protoset}[mode](arg)
    print(json.dumps(result))


main()
