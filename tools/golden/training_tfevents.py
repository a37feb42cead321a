#!/usr/bin/env python3
"""Writes tests/fixtures/training/scalars.tfevents: a TensorBoard event file made with Google's protobuf
runtime (python3-protobuf) and crcmod's CRC-32C (python3-crcmod), independent of InstructTune's writer.

The message layout is TensorFlow's event.proto / summary.proto (Event: wall_time=1 double, step=2 int64,
file_version=3 string, summary=5; Summary: value=1 repeated; Summary.Value: tag=1 string, simple_value=2 float);
the record framing is TFRecord: uint64 length, masked CRC-32C of the length, data, masked CRC-32C of the data.
Run: /usr/bin/python3 tools/golden/training_tfevents.py
"""
import os, struct
import crcmod.predefined
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto
fdp = descriptor_pb2.FileDescriptorProto(name="tb_event.proto", package="tensorboard", syntax="proto3")
value = fdp.message_type.add(name="SummaryValue")
value.field.add(name="tag", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
value.field.add(name="simple_value", number=2, type=F.TYPE_FLOAT, label=F.LABEL_OPTIONAL, oneof_index=0)
value.oneof_decl.add(name="value")
summary = fdp.message_type.add(name="Summary")
summary.field.add(name="value", number=1, type=F.TYPE_MESSAGE, label=F.LABEL_REPEATED, type_name=".tensorboard.SummaryValue")
event = fdp.message_type.add(name="Event")
event.field.add(name="wall_time", number=1, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
event.field.add(name="step", number=2, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
event.field.add(name="file_version", number=3, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL, oneof_index=0)
event.field.add(name="summary", number=5, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL, type_name=".tensorboard.Summary", oneof_index=0)
event.oneof_decl.add(name="what")
pool = descriptor_pool.DescriptorPool()
pool.Add(fdp)
Event = message_factory.MessageFactory(pool).GetPrototype(pool.FindMessageTypeByName("tensorboard.Event"))

crc = crcmod.predefined.mkCrcFun("crc-32c")
def masked(data):
    c = crc(data)
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF

def record(data):
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked(header)) + data + struct.pack("<I", masked(data))

out = bytearray()
out += record(Event(wall_time=1700000000.5, file_version="brain.Event:2").SerializeToString())
scalars = [("train/loss", 2.75, 1, 1700000001.25), ("train/lr", 1e-4, 1, 1700000001.25),
           ("train/loss", 1.125, 2, 1700000002.0), ("eval/exact_match", 0.8125, 10, 1700000010.0),
           ("train/loss", 0.0, 0, 1700000000.75)]
for tag, v, step, t in scalars:
    e = Event(wall_time=t, step=step)
    e.summary.value.add(tag=tag, simple_value=v)
    out += record(e.SerializeToString())

path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "training", "scalars.tfevents")
with open(path, "wb") as f:
    f.write(out)
print("wrote", os.path.normpath(path), len(out), "bytes; CRC-32C('123456789') =", hex(crc(b"123456789")))
