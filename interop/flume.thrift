/*
 * Flume's Thrift RPC protocol, as published in Apache Flume
 * (flume-ng-sdk/src/main/thrift/flume.thrift). The interop tests parse this file at run
 * time with thriftpy2, an implementation of Thrift independent of Flumen's.
 */

namespace java org.apache.flume.thrift

struct ThriftFlumeEvent {
  1: required map <string, string> headers,
  2: required binary body,
}

enum Status {
  OK,
  FAILED,
  ERROR,
  UNKNOWN
}

service ThriftSourceProtocol {
  Status append(1: ThriftFlumeEvent event),
  Status appendBatch(1: list<ThriftFlumeEvent> events),
}
