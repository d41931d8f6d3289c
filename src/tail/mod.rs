//! Following log files into records (issue 5).
