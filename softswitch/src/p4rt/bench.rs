//! Write throughput over loopback gRPC (filled in below).
