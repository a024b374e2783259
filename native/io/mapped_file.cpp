#include "io/mapped_file.h"

#include <cerrno>
#include <limits>
#include <new>
#include <system_error>

#include "core/error.h"

#if defined(__unix__) || defined(__APPLE__)
#define FUSEDIFF_MMAP 1
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#else
#include <fstream>
#endif

namespace fusediff::io {

void fail_io(const std::string& what, const std::string& path, int err) {
  fail(ErrorCode::Io, what + " '" + path + "': " + std::generic_category().message(err));
}

namespace {

[[noreturn]] void fail_too_large(const std::string& path, uint64_t size) {
  fail(ErrorCode::Resource, "cannot hold the " + std::to_string(size) + " bytes of '" + path + "' in memory");
}

}  // namespace

std::shared_ptr<const MappedFile> MappedFile::from_bytes(std::vector<uint8_t> bytes, std::string name) {
  std::shared_ptr<MappedFile> file(new MappedFile(std::move(name)));
  file->owned_ = std::move(bytes);
  file->bytes_ = file->owned_.data();
  file->size_ = file->owned_.size();
  return file;
}

std::shared_ptr<const MappedFile> MappedFile::open(const std::string& path) {
  std::shared_ptr<MappedFile> file(new MappedFile(path));
  uint64_t size = 0;
#if defined(FUSEDIFF_MMAP)
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail_io("cannot open", path, errno);
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0) fail_io("cannot stat", path, errno);
  if (!S_ISREG(st.st_mode)) fail(ErrorCode::Io, "cannot read '" + path + "': not a regular file");
  size = static_cast<uint64_t>(st.st_size);
  if (size > std::numeric_limits<size_t>::max()) fail_too_large(path, size);
  // mmap of zero bytes fails: an empty file is simply read (as nothing).
  if (size > 0) {
    void* mapping = ::mmap(nullptr, static_cast<size_t>(size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapping != MAP_FAILED) file->mapped_ = static_cast<const uint8_t*>(mapping);
  }
  if (!file->mapped_) {
    // Some file systems cannot be mapped: read the file instead.
    try {
      file->owned_.resize(static_cast<size_t>(size));
    } catch (const std::bad_alloc&) {
      fail_too_large(path, size);
    }
    size_t done = 0;
    while (done < file->owned_.size()) {
      const ssize_t n = ::read(fd, file->owned_.data() + done, file->owned_.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail_io("cannot read", path, errno);
      if (n == 0) fail(ErrorCode::Io, "cannot read '" + path + "': the file shrank while being read");
      done += static_cast<size_t>(n);
    }
  }
#else
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) fail_io("cannot open", path, errno);
  const std::streamoff end = in.tellg();
  if (end < 0) fail(ErrorCode::Io, "cannot determine the size of '" + path + "'");
  size = static_cast<uint64_t>(end);
  if (size > std::numeric_limits<size_t>::max()) fail_too_large(path, size);
  try {
    file->owned_.resize(static_cast<size_t>(size));
  } catch (const std::bad_alloc&) {
    fail_too_large(path, size);
  }
  in.seekg(0);
  if (!in.read(reinterpret_cast<char*>(file->owned_.data()), static_cast<std::streamsize>(size))) {
    fail(ErrorCode::Io, "cannot read '" + path + "'");
  }
#endif
  file->bytes_ = file->mapped_ ? file->mapped_ : file->owned_.data();
  file->size_ = size;
  return file;
}

MappedFile::~MappedFile() {
#if defined(FUSEDIFF_MMAP)
  if (mapped_) ::munmap(const_cast<uint8_t*>(mapped_), static_cast<size_t>(size_));
#endif
}

}  // namespace fusediff::io
