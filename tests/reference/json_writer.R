## The minimal JSON writer of the reference scripts (make_reference*.R source it; run
## them from the repository root). Numbers are written with the shortest of 15/16/17
## significant digits that round-trips.

## ===========================================================================
## Minimal JSON writer (jsonlite only offers 15 significant digits)
## ===========================================================================

## Mark a vector as a JSON array even when it has length 0 or 1.
arr <- function(x) {
  x <- unname(as.vector(x))
  if (is.factor(x)) x <- as.character(x)
  class(x) <- c("json_array", class(x))
  x
}
is_arr <- function(x) inherits(x, "json_array")

json_num <- function(v) {
  if (is.na(v) || !is.finite(v)) return("null")
  if (is.integer(v)) return(as.character(v))
  for (d in 15:17) {
    s <- sprintf(paste0("%.", d, "g"), v)
    if (as.numeric(s) == v) break
  }
  s
}
json_str <- function(s) {
  if (is.na(s)) return("null")
  s <- enc2utf8(s)
  s <- gsub("\\\\", "\\\\\\\\", s)
  s <- gsub("\"", "\\\\\"", s)
  s <- gsub("\n", "\\\\n", s)
  s <- gsub("\r", "\\\\r", s)
  s <- gsub("\t", "\\\\t", s)
  paste0("\"", s, "\"")
}
json_atom <- function(v) {
  if (is.logical(v)) return(if (is.na(v)) "null" else if (v) "true" else "false")
  if (is.numeric(v)) return(json_num(v))
  json_str(as.character(v))
}
to_json <- function(x) {
  if (is.null(x)) return("null")
  if (is.list(x)) {
    nm <- names(x)
    if (is.null(nm)) {
      return(paste0("[", paste(vapply(x, to_json, ""), collapse = ","), "]"))
    }
    body <- vapply(seq_along(x), function(i)
      paste0(json_str(nm[i]), ":", to_json(x[[i]])), "")
    return(paste0("{", paste(body, collapse = ","), "}"))
  }
  if (is.factor(x)) x <- as.character(x)
  if (length(x) == 1L && !is_arr(x)) return(json_atom(unclass(x)))
  x <- unclass(x)
  paste0("[", paste(vapply(seq_along(x), function(i) json_atom(x[i]), ""),
                    collapse = ","), "]")
}
## Top level: one key per line, one record per line (diff-friendly).
write_json_file <- function(obj, path) {
  con <- file(path, open = "w", encoding = "UTF-8")
  on.exit(close(con))
  keys <- names(obj)
  writeLines("{", con)
  for (i in seq_along(keys)) {
    val <- obj[[i]]
    sep <- if (i < length(keys)) "," else ""
    if (is.list(val) && is.null(names(val)) && length(val) > 0) {
      writeLines(paste0("  ", json_str(keys[i]), ": ["), con)
      lines <- vapply(val, to_json, "")
      lines <- paste0("    ", lines, c(rep(",", length(lines) - 1L), ""))
      writeLines(lines, con)
      writeLines(paste0("  ]", sep), con)
    } else if (is.list(val) && !is.null(names(val))) {
      writeLines(paste0("  ", json_str(keys[i]), ": {"), con)
      sub <- vapply(seq_along(val), function(j)
        paste0("    ", json_str(names(val)[j]), ": ", to_json(val[[j]])), "")
      writeLines(paste0(sub, c(rep(",", length(sub) - 1L), "")), con)
      writeLines(paste0("  }", sep), con)
    } else {
      writeLines(paste0("  ", json_str(keys[i]), ": ", to_json(val), sep), con)
    }
  }
  writeLines("}", con)
}
