"""HL7 v2 over MLLP with a durable inbox (issue 4 §2, STYLE 7): parse → store → ACK → handlers."""
