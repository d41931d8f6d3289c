//! Writing records to Apache Cassandra (issue 4).
