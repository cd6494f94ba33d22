"""Operations helpers: kill switch, sd_notify, logging, notifications."""
