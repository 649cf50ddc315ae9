"""timesheet-invoicer: approved timesheets in, one draft invoice per customer out."""
