# The VM's JSON answers (`flank ... --json`): asked for, checked against the schema this
# package ships (inst/schema/answers.json, the contract flank's own tests check too), and
# turned into an error with the VM's message and hint when flank said no.

answers_schema <- local({
  cache <- NULL
  function() {
    if (is.null(cache)) {
      file <- system.file("schema", "answers.json", package = "flank")
      cache <<- jsonlite::fromJSON(file, simplifyVector = FALSE)
    }
    cache
  }
})

# Ask the VM's flank for an answer: `flank ARGS --json` over ssh. Returns the parsed answer.
ask <- function(target, flank_args, input = NULL, ok_status = 0L) {
  got <- run_remote(target, c(flank_args, "--json"), input = input)
  answer <- parse_answer(got$stdout)
  if (is.null(answer)) {
    told <- paste(got$stderr, collapse = "\n")
    if (got$status == 2 && grepl("unrecognized arguments: --json|invalid choice", told)) {
      too_old(target)
    }
    said <- sub("^flank: (error: )?", "", got$stderr[nzchar(got$stderr)])
    if (got$status == 2 && length(said)) {  # flank's own usage message (a word it does not take)
      flank_error(said[length(said)], sprintf("see `flank %s --help` on the VM", flank_args[1]))
    }
    flank_error(
      sprintf("the VM's flank gave no answer (exit %d)%s", got$status, if (nzchar(told)) paste0(": ", told) else ""),
      "check flank on the VM: flank doctor"
    )
  }
  if (!is.numeric(answer$schema) || answer$schema < SCHEMA) too_old(target, answer)
  if (identical(answer$kind, "error")) {
    flank_error(answer$error, answer$hint, class = c("flank_vm_error"))
  }
  if (!got$status %in% ok_status) {
    flank_error(sprintf("the VM's flank exited %d", got$status), paste(got$stderr, collapse = "\n"))
  }
  check_answer(answer)
  answer
}

parse_answer <- function(lines) {
  lines <- lines[startsWith(lines, "{")]
  if (!length(lines)) return(NULL)
  tryCatch(jsonlite::fromJSON(lines[length(lines)], simplifyVector = FALSE), error = function(e) NULL)
}

too_old <- function(target, answer = NULL) {
  version <- if (!is.null(answer$flank)) answer$flank else {
    got <- tryCatch(run_remote(target, "--version"), error = function(e) NULL)
    if (!is.null(got) && length(got$stdout)) sub("^flank ", "", got$stdout[1]) else "unknown"
  }
  has <- if (is.null(answer)) "no JSON answers" else sprintf("JSON schema %s", answer$schema)
  flank_error(
    sprintf(
      "update flank on the VM: flank %s there gives %s; this R package (flank %s) needs schema %d",
      version, has, as.character(utils::packageVersion("flank")), SCHEMA
    ),
    "on the VM: install the newer flank, then run `flank init PROJECT` again",
    class = "flank_version_error"
  )
}

# --- the contract: an answer against its kind's JSON Schema -------------------

# TRUE, or an error naming the first key out of place. Knows the parts of JSON Schema the
# answers' schema uses: type, required, properties, items, additionalProperties, enum, oneOf, $ref.
check_answer <- function(answer) {
  schema <- answers_schema()
  check_value(answer, schema$definitions$envelope, schema, "answer")
  kind <- schema$kinds[[answer$kind]]
  if (is.null(kind)) flank_error(sprintf("unknown answer kind '%s'", answer$kind))
  check_value(answer, schema$definitions[[kind]], schema, answer$kind)
  invisible(TRUE)
}

json_type <- function(value) {
  if (is.null(value)) return("null")
  if (is.list(value)) return(if (!is.null(names(value)) || length(value) == 0) c("object", "array") else "array")
  if (is.logical(value)) return("boolean")
  if (is.character(value)) return("string")
  if (is.numeric(value)) return(if (value == round(value)) c("integer", "number") else "number")
  "unknown"
}

check_value <- function(value, rule, schema, where) {
  if (!is.null(rule[["$ref"]])) rule <- schema$definitions[[sub("^#/definitions/", "", rule[["$ref"]])]]
  if (!is.null(rule$oneOf)) {
    fits <- vapply(rule$oneOf, function(r) isTRUE(tryCatch(check_value(value, r, schema, where), error = function(e) FALSE)), TRUE)
    if (!any(fits)) flank_error(sprintf("the VM's answer does not fit the schema at %s", where), class = "flank_schema_error")
    return(invisible(TRUE))
  }
  if (!is.null(rule$type) && !any(json_type(value) %in% unlist(rule$type))) {
    flank_error(
      sprintf("the VM's answer does not fit the schema at %s: %s, not %s", where, json_type(value)[1], paste(unlist(rule$type), collapse = " or ")),
      class = "flank_schema_error"
    )
  }
  if (!is.null(rule$enum) && !is.null(value) && !value %in% unlist(rule$enum)) {
    flank_error(sprintf("the VM's answer does not fit the schema at %s: '%s'", where, value), class = "flank_schema_error")
  }
  if (is.list(value)) {
    missing <- setdiff(unlist(rule$required), names(value))
    if (length(missing)) {
      flank_error(sprintf("the VM's answer lacks %s at %s", paste(missing, collapse = ", "), where), class = "flank_schema_error")
    }
    for (key in intersect(names(rule$properties), names(value))) {
      check_value(value[[key]], rule$properties[[key]], schema, paste0(where, "$", key))
    }
    if (!is.null(rule$additionalProperties) && is.list(rule$additionalProperties)) {
      for (key in names(value)) check_value(value[[key]], rule$additionalProperties, schema, paste0(where, "$", key))
    }
    if (!is.null(rule$items)) {
      for (i in seq_along(value)) check_value(value[[i]], rule$items, schema, sprintf("%s[%d]", where, i))
    }
  }
  invisible(TRUE)
}
